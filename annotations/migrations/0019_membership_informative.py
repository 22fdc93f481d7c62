from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotations", "0018_lean_hot_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="informative",
            field=models.BooleanField(default=True),
        ),
    ]
