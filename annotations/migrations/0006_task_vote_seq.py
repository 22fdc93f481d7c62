from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0005_unbatched_votes_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="task",
            name="vote_seq",
            field=models.PositiveBigIntegerField(default=0),
        ),
    ]
