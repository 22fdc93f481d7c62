"""The FERV39k scene hierarchy is seeded exactly by the data migration."""

import csv
from pathlib import Path

import pytest

from clips.models import Scenario, Scene

# From FERV39K.md: scenario, short code, scenes as (display name, release folder name).
EXPECTED = {
    ("DL", "Daily Life"): [
        ("Conflict", "Conflict"), ("School", "School"), ("Daily-Life", "DailyLife"),
        ("Argue", "Argue"), ("Medicine", "Medicine"), ("Social", "Social"),
    ],
    ("WIS", "Weak-Interactive Shows"): [
        ("Action", "Action"), ("Scholar-Reports", "ScholarReport"), ("Speech", "Speech"),
        ("Live-Show", "Liveshow"), ("Elegant-Art", "ElegantArt"), ("Talk-Show", "Talkshow"),
    ],
    ("SIA", "Strong-Interactive Activities"): [
        ("Business", "Business"), ("Experiment", "Experiment"),
        ("Official-Event", "OfficialEvent"), ("Crime", "Crime"), ("Interview", "Interview"),
        ("Contest", "Contest"),
    ],
    ("AI", "Anomaly Issues"): [
        ("History", "History"), ("Terror", "Terror"), ("War", "War"), ("Crisis", "Crisis"),
    ],
}  # fmt: skip
SHARED_COUNTS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "ferv39k_scene_class_counts.csv"
)


@pytest.mark.django_db
def test_four_scenarios_and_twenty_two_scenes_in_order():
    seeded = {
        (s.code, s.name): [(sc.name, sc.folder) for sc in s.scenes.order_by("position")]
        for s in Scenario.objects.order_by("position")
    }
    assert seeded == EXPECTED
    assert list(seeded) == list(EXPECTED)
    assert Scene.objects.count() == 22
    assert list(Scene.objects.values_list("position", flat=True)) == list(range(1, 23))


@pytest.mark.django_db
@pytest.mark.skipif(not SHARED_COUNTS.exists(), reason="shared data folder not beside the repo")
def test_folder_names_match_the_release_counts_file():
    with SHARED_COUNTS.open() as handle:
        rows = list(csv.DictReader(handle))
    released = {(row["scenario"], row["scene"]) for row in rows}
    seeded = set(Scene.objects.values_list("scenario__name", "folder"))
    assert seeded == released
