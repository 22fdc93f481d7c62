"""Stored agreement statistics, per campaign, scenario, scene, class and annotator."""

import pytest

from annotations import agreement
from annotations.models import CampaignStatistics, Vote
from annotations.statistics import statistics_refresh
from clips.models import Scene
from tests.factories import CampaignFactory, ClipFactory, TaskFactory, UserFactory

H, S, N, P = 3, 5, 4, 7


@pytest.mark.django_db
def test_statistics_match_hand_computed_values():
    campaign = CampaignFactory(votes_per_clip=3)
    ann = [UserFactory(username=f"a{i}") for i in range(3)]
    speech, war = Scene.objects.get(folder="Speech"), Scene.objects.get(folder="War")
    # (scene, answers of a0, a1, a2, time of a0)
    table = [
        (speech, [H, H, H]), (speech, [H, H, S]), (speech, [S, S, S]), (speech, [N, S, H]),
        (war, [H, S, H]), (war, [P, P, H]), (war, [S, S, N]),
    ]  # fmt: skip
    tasks = []
    for scene, answers in table:
        task = TaskFactory(campaign=campaign, clip=ClipFactory(scene=scene))
        tasks.append(task)
        for user, answer in zip(ann, answers, strict=True):
            Vote.objects.create(
                task=task, campaign=campaign, annotator=user, answer=answer, time_ms=1000 + answer
            )
    gold = TaskFactory(campaign=campaign, is_gold=True, gold_label=H, clip=ClipFactory(scene=war))
    Vote.objects.create(task=gold, campaign=campaign, annotator=ann[0], answer=H, time_ms=900)
    Vote.objects.create(task=gold, campaign=campaign, annotator=ann[1], answer=S, time_ms=900)
    from annotations.consensus import campaign_recompute

    campaign_recompute(campaign_id=campaign.pk)
    stats = statistics_refresh(campaign_id=campaign.pk)
    data = CampaignStatistics.objects.get(campaign=campaign).data
    assert data == stats.data

    counts = [[answers.count(a) for a in range(8)] for _, answers in table] + [
        [0, 0, 0, 1, 0, 1, 0, 0]
    ]
    assert data["alpha"] == pytest.approx(
        agreement.krippendorff_nominal_from_counts(counts), abs=1e-6
    )
    by_scene = {row["scene"]: row for row in data["per_scene"]}
    assert by_scene["Speech"]["alpha"] == pytest.approx(
        agreement.krippendorff_nominal_from_counts(counts[:4]), abs=1e-6
    )
    assert by_scene["War"]["clips"] == 4
    # Speech: H,H,H and H,H,S trusted, S,S,S trusted, N,S,H asks for a fourth vote.
    assert by_scene["Speech"]["status"] == {
        "collecting": 1,
        "trusted": 3,
        "disputed": 0,
        "discarded": 0,
        "adjudicated": 0,
    }
    # Fleiss only over clips with exactly 3 votes: the 7 plain clips (the gold one has 2).
    assert data["fleiss_clips"] == 7
    assert data["fleiss_kappa"] == pytest.approx(agreement.fleiss_kappa(counts[:7]), abs=1e-6)
    # Trusted labels: H (3/3), H (2/3), S, H (2/3 war), S (2/3) -> happy 3, sad 2.
    assert data["per_class"]["happy"] == 3 and data["per_class"]["sad"] == 2
    rows = {r["annotator_id"]: r for r in data["annotators"]}
    first = rows[ann[0].pk]
    assert first["username"] == "a0"
    assert first["batches"] == {"accept": 0, "improper": 0, "unacceptable": 0, "rejected": 0}
    assert first["votes"] == 8 and first["gold_answers"] == 1 and first["gold_accuracy"] == 1.0
    assert rows[ann[1].pk]["gold_accuracy"] == 0.0
    assert first["pass_rate"] == pytest.approx(1 / 8)
    assert rows[ann[2].pk]["median_time_ms"] == 1003  # answers H,S,S,H,H,H,N: 4 x 1003
    # a0 against the others' strict leader: agrees on clips 1 (H), 3 (S), 5 (H: S,H tie -> not
    # comparable), 6 (P vs P,H tie -> not comparable), 7 (S vs S,N tie); leaders exist on clips
    # 1 (H,H), 2 (H,S tie: no), 3 (S,S), 4 (S,H tie: no), gold (S alone: a0 said H, disagrees).
    assert first["agreement"] == pytest.approx(2 / 3)
    # Confusion: final label happy (row 3) got 3+2+2 happy answers.
    assert data["confusion"][H][H] == 3 + 2 + 2
    assert data["confusion"][S][N] == 1


@pytest.mark.django_db
def test_statistics_of_a_campaign_without_votes_are_empty_not_errors():
    campaign = CampaignFactory()
    TaskFactory(campaign=campaign)
    data = statistics_refresh(campaign_id=campaign.pk).data
    assert data["alpha"] is None and data["fleiss_kappa"] is None
    assert data["annotators"] == [] and data["votes"] == 0
