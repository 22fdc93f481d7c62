"""Two reviewers deciding one clip at the same moment: one wins, the other hears about it."""

import threading

import pytest
from django.db import connection

from annotations.models import ReviewDecision, Role, Task
from labelstudio_ferv.expressions import Answer
from tests.factories import CampaignFactory, MembershipFactory, UserFactory, voted_task

pytestmark = pytest.mark.usefixtures("fast_password_hasher")


def test_two_concurrent_decisions_on_one_clip_give_one_winner_and_one_conflict(live_db, api):
    campaign = CampaignFactory()
    rita, ralph = UserFactory(username="rita"), UserFactory(username="ralph")
    for user in (rita, ralph):
        MembershipFactory(campaign=campaign, user=user, role=Role.REVIEWER)
    voters = [UserFactory(username=f"voter{i}") for i in range(5)]
    answers = [Answer.FEAR, Answer.SURPRISE, Answer.FEAR, Answer.SURPRISE, Answer.NEUTRAL]
    task = voted_task(campaign, answers, voters)
    assert task.status == "disputed" and task.review_version == 0
    url = f"/api/v1/campaigns/{campaign.pk}/review/tasks/{task.pk}/decisions/"
    clients = {"fear": api(rita), "surprise": api(ralph)}
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def decide(label: str) -> None:
        try:
            start.wait(timeout=10)
            body = {"action": "label", "label": label, "version": 0}
            results[label] = clients[label].post(url, body, format="json")
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=decide, args=(label,)) for label in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409]
    winner = next(label for label, r in results.items() if r.status_code == 200)
    loser = next(r for r in results.values() if r.status_code == 409)
    who = "rita" if winner == "fear" else "ralph"
    assert loser.json()["error"]["code"] == "stale_version"
    assert loser.json()["error"]["message"].startswith(f"{who} already decided this clip")
    task.refresh_from_db()
    assert (task.status, task.label, task.review_version) == (
        "adjudicated",
        int(Answer[winner.upper()]),
        1,
    )
    (decision,) = ReviewDecision.objects.filter(task=task)
    assert decision.reviewer.username == who
    assert Task.objects.get(pk=task.pk).decisions.count() == 1
