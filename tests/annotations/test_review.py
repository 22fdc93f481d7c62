"""Review queue, decisions and Improper batches, through the API, asserting the database."""

import csv
import io
from urllib.parse import urlsplit

import pytest

from annotations import consensus, exports, review
from annotations.batches import batches_close
from annotations.models import (
    CampaignStatistics,
    GoldBatch,
    ReviewDecision,
    Role,
    Task,
    Vote,
)
from clips.models import Scene
from labelstudio_ferv.expressions import Answer
from tests.factories import (
    CampaignFactory,
    ClipFactory,
    MembershipFactory,
    TaskFactory,
    UserFactory,
    voted_task,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

H, S, N, P, F, SU, A = (
    Answer.HAPPY, Answer.SAD, Answer.NEUTRAL, Answer.PASS, Answer.FEAR, Answer.SURPRISE,
    Answer.ANGRY,
)  # fmt: skip
SPLIT_5 = [F, SU, F, SU, N]  # 2/5 at the cap: disputed
SPLIT_3_OF_5 = [H, H, H, S, N]  # 3/5 < 2/3 at the cap: disputed


def crowd(campaign, n=7):
    users = [UserFactory(username=f"voter{i}") for i in range(n)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    return users


def queue(api, user, campaign, **params):
    return api(user).get(f"/api/v1/campaigns/{campaign.pk}/review/queue/", params)


def decide(api, user, task, **body):
    url = f"/api/v1/campaigns/{task.campaign_id}/review/tasks/{task.pk}/decisions/"
    body.setdefault("version", Task.objects.get(pk=task.pk).review_version)
    return api(user).post(url, body, format="json")


def labels_rows(campaign):
    out = io.StringIO()
    exports.write_labels(campaign=campaign, out=out, progress=exports.NoProgress())
    return {int(r["clip_id"]): r for r in csv.DictReader(io.StringIO(out.getvalue()))}


def test_the_queue_holds_exactly_the_disputed_clips_lowest_agreement_first(
    api, campaign, rita, adam
):
    voters = crowd(campaign)
    disputed = [
        voted_task(campaign, SPLIT_3_OF_5, voters),  # 0.6
        voted_task(campaign, SPLIT_5, voters),  # 0.4
        voted_task(campaign, [H, S, N, A, F], voters),  # 0.2
        voted_task(campaign, SPLIT_5, voters),  # 0.4, later id
    ]
    others = [
        voted_task(campaign, [H, H, S], voters),  # trusted
        voted_task(campaign, [H, S, N], voters),  # collecting (asks for a 4th vote)
        voted_task(campaign, [P, P, H], voters),  # discarded
        voted_task(campaign, SPLIT_5, voters, is_gold=True, gold_label=F),  # gold: never queued
        TaskFactory(campaign=campaign),  # no votes yet
    ]
    elsewhere = CampaignFactory()
    voted_task(elsewhere, SPLIT_5, voters)
    assert [t.status for t in disputed] == ["disputed"] * 4
    assert [t.status for t in others[:3]] == ["trusted", "collecting", "discarded"]

    expected = [disputed[2].pk, disputed[1].pk, disputed[3].pk, disputed[0].pk]
    body = queue(api, rita, campaign).json()
    assert [item["task"] for item in body["items"]] == expected
    assert body["next_cursor"] is None

    # Keyset pages of one: the same clips in the same order, then no cursor.
    seen, cursor = [], None
    while True:
        page = queue(api, adam, campaign, limit=1, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200
        seen += [item["task"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert queue(api, rita, campaign, cursor="not-a-cursor").status_code == 400


def test_a_queue_item_shows_counts_voters_reference_and_media(api, campaign, rita):
    voters = crowd(campaign)
    clip = ClipFactory(reference_label=int(F), name="clip-7.mp4")
    task = voted_task(campaign, SPLIT_5, voters, clip=clip)
    (item,) = queue(api, rita, campaign).json()["items"]
    assert item["task"] == task.pk and item["clip"]["id"] == clip.pk
    assert urlsplit(item["clip"]["video_url"]).path.endswith(clip.video.name)
    assert urlsplit(item["clip"]["poster_url"]).path.endswith(clip.poster.name)
    assert item["scene"]["folder"] == clip.scene.folder
    assert item["scenario"]["id"] == clip.scene.scenario_id
    assert item["counts"] == {
        "angry": 0, "disgust": 0, "fear": 2, "happy": 0, "neutral": 1, "sad": 0, "surprise": 2,
        "pass": 0,
    }  # fmt: skip
    assert item["leading"] == ["fear", "surprise"]
    assert [(v["annotator"], v["answer"]) for v in item["votes"]] == [
        ("voter0", "fear"), ("voter1", "surprise"), ("voter2", "fear"), ("voter3", "surprise"),
        ("voter4", "neutral"),
    ]  # fmt: skip
    assert item["reference_label"] == "fear"
    assert item["agreement"] == pytest.approx(0.4)
    assert (item["review_version"], item["decisions"], item["review_locked"]) == (0, 0, False)


def test_the_queue_filters_by_scenario_scene_leading_label_and_agreement(api, campaign, rita):
    voters = crowd(campaign)
    action = Scene.objects.get(folder="Action")  # Weak-Interactive Shows
    school = Scene.objects.get(folder="School")  # Daily Life
    a = voted_task(campaign, SPLIT_5, voters, clip=ClipFactory(scene=action))  # fear/surprise
    b = voted_task(campaign, SPLIT_3_OF_5, voters, clip=ClipFactory(scene=school))  # happy 0.6
    c = voted_task(campaign, [S, S, H, H, N], voters, clip=ClipFactory(scene=school))  # 0.4

    def ids(**params):
        response = queue(api, rita, campaign, **params)
        assert response.status_code == 200, response.json()
        return {item["task"] for item in response.json()["items"]}

    assert ids(scenario="DL") == {b.pk, c.pk}
    assert ids(scenario="Weak-Interactive Shows") == {a.pk}
    assert ids(scenario=str(action.scenario_id)) == {a.pk}
    assert ids(scene="School") == {b.pk, c.pk}
    assert ids(scene=str(action.pk)) == {a.pk}
    assert ids(leading="happy") == {b.pk, c.pk}  # c: a tie of happy and sad
    assert ids(leading="surprise") == {a.pk}
    assert ids(leading="angry") == set()
    assert ids(agreement_min=0.5) == {b.pk}
    assert ids(agreement_max=0.5, scene="school") == {c.pk}
    assert queue(api, rita, campaign, scene="Atlantis").status_code == 400
    assert queue(api, rita, campaign, leading="bored").status_code == 400


def test_clips_where_majority_and_dawid_skene_disagree_are_listed(api, campaign, rita):
    voters = crowd(campaign)
    agree = voted_task(campaign, [H, H, S], voters)
    differ = voted_task(campaign, [H, H, S], voters)
    Task.objects.filter(pk=agree.pk).update(ds_label=H, ds_confidence=0.99)
    Task.objects.filter(pk=differ.pk).update(ds_label=S, ds_confidence=0.7)
    url = f"/api/v1/campaigns/{campaign.pk}/review/ds-disagreements/"
    (item,) = api(rita).get(url).json()["items"]
    assert (item["task"], item["label"], item["ds_label"]) == (differ.pk, "happy", "sad")


REVIEW_URLS = [
    ("get", "review/queue/"),
    ("get", "review/ds-disagreements/"),
    ("get", "review/tasks/{task}/"),
    ("get", "review/tasks/{task}/decisions/"),
    ("post", "review/tasks/{task}/decisions/"),
    ("get", "review/decisions/"),
    ("get", "review/batches/"),
    ("post", "review/batches/{batch}/decision/"),
    ("get", "exports/"),
    ("post", "exports/"),
    ("get", "exports/{job}/"),
]


@pytest.mark.parametrize(("method", "path"), REVIEW_URLS)
def test_annotators_are_refused_and_strangers_learn_nothing(
    api, campaign, alice, stranger, method, path
):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    batch = GoldBatch.objects.create(
        campaign=campaign, annotator=alice, number=1, size=10, gold_total=5, gold_correct=3,
        verdict="improper", review="pending",
    )  # fmt: skip
    job = exports.ExportJob.objects.create(campaign=campaign, kind="labels")
    url = f"/api/v1/campaigns/{campaign.pk}/" + path.format(
        task=task.pk, batch=batch.pk, job=job.pk
    )
    body = {"action": "discard", "version": 0, "decision": "accept", "kind": "labels"}
    refused = getattr(api(alice), method)(url, body, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    hidden = getattr(api(stranger), method)(url, body, format="json")
    assert hidden.status_code == 404
    assert hidden.json() == {"error": {"code": "not_found", "message": "Campaign not found."}}
    assert getattr(api(None), method)(url, body, format="json").status_code in (401, 403)
    # Nothing changed.
    assert Task.objects.get(pk=task.pk).status == "disputed"
    assert GoldBatch.objects.get(pk=batch.pk).review == "pending"
    assert not ReviewDecision.objects.exists()
    assert exports.ExportJob.objects.count() == 1


def test_a_clip_of_another_campaign_is_not_found(api, campaign, rita):
    other = voted_task(CampaignFactory(), SPLIT_5, crowd(campaign))
    base = f"/api/v1/campaigns/{campaign.pk}/review/tasks/{other.pk}/"
    assert api(rita).get(base).status_code == 404
    assert api(rita).get(base + "decisions/").status_code == 404
    response = api(rita).post(
        base + "decisions/", {"action": "discard", "version": 0}, format="json"
    )
    assert response.status_code == 404
    assert Task.objects.get(pk=other.pk).status == "disputed"


def test_a_label_decision_changes_the_label_the_export_the_statistics_and_the_history(
    api, campaign, rita, django_capture_on_commit_callbacks
):
    voters = crowd(campaign)
    task = voted_task(campaign, SPLIT_5, voters)
    assert task.clip_id not in labels_rows(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        response = decide(api, rita, task, action="label", label="fear", note="fear at 0.8 s")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["task"]["status"] == "adjudicated" and body["task"]["label"] == "fear"
    assert body["task"]["review_version"] == 1 and body["task"]["decisions"] == 1
    task.refresh_from_db()
    assert (task.status, task.label, task.review_locked) == ("adjudicated", F, True)

    decision = ReviewDecision.objects.get(task=task)
    assert (decision.reviewer, decision.action, decision.label) == (rita, "label", F)
    assert decision.note == "fear at 0.8 s"
    assert decision.before["status"] == "disputed" and decision.before["label"] is None
    assert decision.after["status"] == "adjudicated" and decision.after["label"] == "fear"

    row = labels_rows(campaign)[task.clip_id]
    assert (row["label"], row["label_index"], row["how"]) == ("Fear", "2", "adjudicated")
    assert row["agreement"] == "0.4" and row["votes"] == "5"
    stats = CampaignStatistics.objects.get(campaign=campaign)
    assert stats.data["per_class"]["fear"] == 1
    assert not queue(api, rita, campaign).json()["items"]

    # Later votes and a full recompute keep the reviewer's label.
    late = UserFactory(username="late")
    Vote.objects.create(task=task, campaign=campaign, annotator=late, answer=int(SU))
    assert consensus.consensus_update(task_id=task.pk).label == F
    consensus.campaign_recompute(campaign_id=campaign.pk)
    task.refresh_from_db()
    assert (task.status, task.label, task.vote_count) == ("adjudicated", F, 6)

    history = api(rita).get(f"/api/v1/campaigns/{campaign.pk}/review/decisions/").json()
    assert [(d["action"], d["label"], d["reviewer"]) for d in history["items"]] == [
        ("label", "fear", "rita")
    ]


def test_a_decision_taken_during_a_full_recompute_holds(campaign, rita, monkeypatch):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    load = consensus.load_campaign

    def load_then_decide(**kwargs):
        data = load(**kwargs)  # the arrays say: not locked, disputed
        review.task_decide(
            campaign=campaign, task_id=task.pk, reviewer=rita, action="label", version=0,
            label=int(F),
        )  # fmt: skip
        return data

    monkeypatch.setattr(consensus, "load_campaign", load_then_decide)
    consensus.campaign_recompute(campaign_id=campaign.pk)
    task.refresh_from_db()
    assert (task.status, task.label, task.review_locked) == ("adjudicated", F, True)


def test_a_discard_takes_the_clip_out_of_the_queue_and_the_export(api, campaign, adam):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    assert decide(api, adam, task, action="discard").status_code == 200
    task.refresh_from_db()
    assert (task.status, task.label, task.review_locked) == ("discarded", None, True)
    assert task.clip_id not in labels_rows(campaign)
    assert not queue(api, adam, campaign).json()["items"]
    consensus.campaign_recompute(campaign_id=campaign.pk)
    assert Task.objects.get(pk=task.pk).status == "discarded"


def test_more_votes_reopen_collection_and_the_next_vote_can_settle_it(api, rita):
    campaign = CampaignFactory(min_agreement=0.5)  # votes 3, cap 5
    MembershipFactory(campaign=campaign, user=rita, role=Role.REVIEWER)
    voters = crowd(campaign)
    task = voted_task(campaign, SPLIT_5, voters)  # fear 2, surprise 2: a tie at the cap
    assert task.status == "disputed"
    response = decide(api, rita, task, action="more_votes", extra_votes=2)
    assert response.status_code == 200, response.json()
    task.refresh_from_db()
    assert (task.status, task.extra_votes, task.votes_needed) == ("collecting", 2, 6)
    assert task.review_locked is False
    # The bulk recompute agrees with the per-vote rule on a clip with extra votes.
    consensus.campaign_recompute(campaign_id=campaign.pk)
    task.refresh_from_db()
    assert (task.status, task.votes_needed) == ("collecting", 6)
    Vote.objects.create(task=task, campaign=campaign, annotator=voters[5], answer=int(F))
    task = consensus.consensus_update(task_id=task.pk)
    assert (task.status, task.label, task.vote_count) == ("trusted", F, 6)
    decision = ReviewDecision.objects.get(task=task)
    assert (decision.action, decision.extra_votes) == ("more_votes", 2)
    assert decision.after["status"] == "collecting" and decision.after["votes_needed"] == 6


def test_more_votes_on_a_settled_clip_ask_for_at_least_one_vote(api, campaign, rita):
    task = voted_task(campaign, [H, H, H], crowd(campaign))
    assert decide(api, rita, task, action="more_votes", extra_votes=1).status_code == 200
    task.refresh_from_db()
    assert (task.status, task.label, task.votes_needed) == ("collecting", None, 4)


def test_a_decision_is_reversed_by_another_decision_never_by_editing_history(
    api, campaign, rita, adam
):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    assert decide(api, rita, task, action="label", label="surprise").status_code == 200
    response = decide(api, adam, task, action="reopen", note="too hasty")
    assert response.status_code == 200
    task.refresh_from_db()
    assert (task.status, task.label, task.review_locked, task.review_version) == (
        "disputed", None, False, 2,
    )  # fmt: skip
    assert decide(api, adam, task, action="label", label="fear").status_code == 200
    history = (
        api(rita)
        .get(f"/api/v1/campaigns/{campaign.pk}/review/tasks/{task.pk}/decisions/")
        .json()["items"]
    )
    assert [(d["action"], d["label"], d["reviewer"]) for d in history] == [
        ("label", "fear", "adam"), ("reopen", None, "adam"), ("label", "surprise", "rita"),
    ]  # fmt: skip
    assert history[1]["before"]["label"] == "surprise" and history[1]["note"] == "too hasty"
    assert Task.objects.get(pk=task.pk).label == F
    # Nothing to reopen on a clip no decision holds.
    plain = voted_task(campaign, SPLIT_5, [vote.annotator for vote in task.votes.all()])
    response = decide(api, rita, plain, action="reopen")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "nothing_to_reopen"


def test_a_decision_on_a_version_another_reviewer_moved_on_is_a_conflict(api, campaign, rita, adam):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    assert decide(api, rita, task, action="label", label="fear", version=0).status_code == 200
    late = decide(api, adam, task, action="label", label="surprise", version=0)
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "stale_version"
    assert error["message"].startswith("rita already decided this clip (labelled it fear) at ")
    assert error["details"]["current_version"] == 1 and error["details"]["decided_by"] == "rita"
    assert Task.objects.get(pk=task.pk).label == F
    assert ReviewDecision.objects.filter(task=task).count() == 1


def test_bad_decisions_are_refused_without_changing_anything(api, campaign, rita):
    task = voted_task(campaign, SPLIT_5, crowd(campaign))
    gold = TaskFactory(campaign=campaign, is_gold=True, gold_label=int(H))
    cases = [
        ({"action": "label"}, 400),  # no label
        ({"action": "label", "label": "pass"}, 400),  # PASS is not a label
        ({"action": "discard", "label": "fear"}, 400),
        ({"action": "more_votes"}, 400),
        ({"action": "more_votes", "extra_votes": 50}, 400),
        ({"action": "shrug"}, 400),
    ]
    for body, code in cases:
        response = decide(api, rita, task, **body)
        assert response.status_code == code, (body, response.json())
    response = decide(api, rita, gold, action="label", label="sad")
    assert response.status_code == 409 and response.json()["error"]["code"] == "gold_clip"
    assert not ReviewDecision.objects.exists()
    assert Task.objects.get(pk=task.pk).review_version == 0


def improper_batch(campaign, annotator, gold_right=2):
    """A batch of 10 answers with 5 gold clips, ``gold_right`` of them right (2 of 5 is
    confidently below 0.8, so Improper; see AGGREGATION.md)."""
    campaign.batch_size = 10
    campaign.save()
    right = 0
    for i in range(10):
        gold = i % 2 == 0
        task = TaskFactory(campaign=campaign, is_gold=gold, gold_label=int(H) if gold else None)
        answer = H
        if gold:
            answer = H if right < gold_right else S
            right += 1
        Vote.objects.create(task=task, campaign=campaign, annotator=annotator, answer=int(answer))
    (batch,) = batches_close(campaign_id=campaign.pk, annotator_id=annotator.pk)
    return batch


def test_improper_batches_are_listed_and_decided_once(api, campaign, alice, bob, rita, adam):
    accepted = improper_batch(campaign, alice)
    rejected = improper_batch(campaign, bob, gold_right=1)
    assert (accepted.verdict, accepted.review) == ("improper", "pending")
    url = f"/api/v1/campaigns/{campaign.pk}/review/batches/"
    items = api(rita).get(url).json()["items"]
    assert [b["id"] for b in items] == [accepted.pk, rejected.pk]
    assert items[0]["annotator"] == "alice" and items[0]["accuracy"] == pytest.approx(0.4)
    assert [(g["answer"], g["correct"]) for g in items[0]["gold"]] == [("happy", True)] * 2 + [
        ("sad", False)
    ] * 3

    response = api(rita).post(
        url + f"{accepted.pk}/decision/", {"decision": "accept"}, format="json"
    )
    assert response.status_code == 200 and response.json()["review"] == "accepted"
    again = api(adam).post(url + f"{accepted.pk}/decision/", {"decision": "reject"}, format="json")
    assert again.status_code == 409 and "rita" in again.json()["error"]["message"]
    assert Vote.objects.filter(annotator=alice, is_valid=True).count() == 10

    note = {"decision": "reject", "note": "guessing"}
    assert api(adam).post(url + f"{rejected.pk}/decision/", note, format="json").status_code == 200
    batch = GoldBatch.objects.get(pk=rejected.pk)
    assert (batch.review, batch.reviewed_by, batch.review_note) == ("rejected", adam, "guessing")
    assert not Vote.objects.filter(annotator=bob, is_valid=True).exists()
    assert api(rita).get(url).json()["items"] == []

    accept_batch = GoldBatch.objects.create(
        campaign=campaign, annotator=alice, number=9, size=10, gold_total=5, gold_correct=5,
        verdict="accept",
    )  # fmt: skip
    response = api(rita).post(
        url + f"{accept_batch.pk}/decision/", {"decision": "accept"}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_reviewable"
    far = MembershipFactory(campaign=CampaignFactory(), user=UserFactory(username="far"))
    foreign = improper_batch(far.campaign, far.user)
    assert api(rita).post(
        url + f"{foreign.pk}/decision/", {"decision": "accept"}, format="json"
    ).status_code == (404)
    assert GoldBatch.objects.get(pk=foreign.pk).review == "pending"
