from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0006_task_vote_seq"),
    ]

    operations = [
        migrations.AddField(
            model_name="assignment",
            name="ahead",
            field=models.BooleanField(default=False),
        ),
        migrations.RemoveConstraint(model_name="assignment", name="assignment_one_active"),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.UniqueConstraint(
                condition=models.Q(("state", "active")),
                fields=("campaign", "annotator", "ahead"),
                name="assignment_one_active",
            ),
        ),
    ]
