"""Seed the FERV39k hierarchy: 4 scenarios and 22 scenes (display name, release folder name)."""

from django.db import migrations

HIERARCHY = [
    ("DL", "Daily Life", [
        ("Conflict", "Conflict"), ("School", "School"), ("Daily-Life", "DailyLife"),
        ("Argue", "Argue"), ("Medicine", "Medicine"), ("Social", "Social"),
    ]),
    ("WIS", "Weak-Interactive Shows", [
        ("Action", "Action"), ("Scholar-Reports", "ScholarReport"), ("Speech", "Speech"),
        ("Live-Show", "Liveshow"), ("Elegant-Art", "ElegantArt"), ("Talk-Show", "Talkshow"),
    ]),
    ("SIA", "Strong-Interactive Activities", [
        ("Business", "Business"), ("Experiment", "Experiment"),
        ("Official-Event", "OfficialEvent"), ("Crime", "Crime"), ("Interview", "Interview"),
        ("Contest", "Contest"),
    ]),
    ("AI", "Anomaly Issues", [
        ("History", "History"), ("Terror", "Terror"), ("War", "War"), ("Crisis", "Crisis"),
    ]),
]


def seed(apps, schema_editor):
    Scenario = apps.get_model("clips", "Scenario")
    Scene = apps.get_model("clips", "Scene")
    position = 0
    for s_pos, (code, name, scenes) in enumerate(HIERARCHY, start=1):
        scenario, _ = Scenario.objects.update_or_create(
            code=code, defaults={"name": name, "position": s_pos}
        )
        for display, folder in scenes:
            position += 1
            Scene.objects.update_or_create(
                folder=folder,
                defaults={"name": display, "scenario": scenario, "position": position},
            )


def unseed(apps, schema_editor):
    apps.get_model("clips", "Scene").objects.all().delete()
    apps.get_model("clips", "Scenario").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("clips", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
