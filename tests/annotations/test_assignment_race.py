"""Many annotators at once against real PostgreSQL: every thread has its own connection.

These are the races the claim exists for: the last slots of a campaign, a retried request, a
double-submitted answer. The invariants are asserted on the database afterwards.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import Assignment, Membership, Role, Task, Vote
from tests.factories import CampaignFactory, TaskFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.usefixtures("live_db", "fast_password_hasher")

THREADS = 50


def annotators(campaign, n: int, prefix: str = "racer") -> list[str]:
    """Create ``n`` annotators in the campaign; return their tokens."""
    tokens = []
    for i in range(n):
        user = UserFactory(username=f"{prefix}{i}")
        Membership.objects.create(campaign=campaign, user=user, role=Role.ANNOTATOR)
        tokens.append(Token.objects.create(user=user).key)
    return tokens


def run_together(tokens: list[str], work) -> list:
    """Run ``work(client)`` once per token, all threads released at the same moment."""
    barrier = threading.Barrier(len(tokens))

    def one(token: str):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        try:
            barrier.wait(timeout=30)
            return work(client)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(one, tokens))


def assert_no_clip_over_its_need(campaign) -> None:
    """Votes plus open leases never exceed a clip's need, and the lease counter is exact."""
    for task in Task.objects.filter(campaign=campaign, is_gold=False):
        votes = Vote.objects.filter(task=task).count()
        active = Assignment.objects.filter(task=task, state="active").count()
        assert votes + active <= task.votes_needed, task
        assert task.lease_count == active, task
    repeated = (
        Assignment.objects.values("task", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not repeated.exists()


def test_fifty_threads_racing_for_the_last_slots_never_overfill_a_clip():
    campaign = CampaignFactory(votes_per_clip=3)
    nearly_done = TaskFactory.create_batch(4, campaign=campaign, vote_count=2)
    for task in nearly_done:  # two votes each by earlier annotators: one slot left per clip
        for voter in UserFactory.create_batch(2):
            VoteFactory(task=task, annotator=voter)
    TaskFactory.create_batch(2, campaign=campaign)  # three slots each
    tokens = annotators(campaign, THREADS)

    responses = run_together(
        tokens, lambda c: c.post(f"/api/v1/campaigns/{campaign.pk}/next/").status_code
    )

    assert Counter(responses) == {200: 10, 204: THREADS - 10}
    assert_no_clip_over_its_need(campaign)
    assert Assignment.objects.filter(state="active").count() == 10


def test_fifty_annotators_working_a_campaign_to_the_end_give_each_clip_exactly_its_votes():
    campaign = CampaignFactory(votes_per_clip=3)
    tasks = TaskFactory.create_batch(12, campaign=campaign)
    tokens = annotators(campaign, THREADS)

    def work(client) -> int:
        answered = 0
        while True:
            response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
            if response.status_code == 204:
                return answered
            assert response.status_code == 200
            assignment_id = response.json()["assignment"]["id"]
            # Everyone agrees, so every clip is settled at three votes.
            stored = client.post(
                f"/api/v1/assignments/{assignment_id}/answer/", {"label": "sad"}, format="json"
            )
            assert stored.status_code == 201
            answered += 1

    answered = run_together(tokens, work)

    assert sum(answered) == 3 * len(tasks)
    assert_no_clip_over_its_need(campaign)
    per_task = Counter(Vote.objects.values_list("task_id", flat=True))
    assert per_task == {t.pk: 3 for t in tasks}
    assert not Vote.objects.values("task", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    # The consensus ran after each commit (eagerly here) and settled every clip.
    assert set(Task.objects.values_list("status", "label", "vote_count")) == {("trusted", 5, 3)}


def test_fifty_annotators_holding_a_clip_ahead_still_give_each_clip_exactly_its_votes():
    campaign = CampaignFactory(votes_per_clip=3)
    tasks = TaskFactory.create_batch(12, campaign=campaign)
    tokens = annotators(campaign, THREADS, prefix="preloader")

    def work(client) -> int:
        # As the workspace does: answer the clip on screen, the one ahead comes next.
        answered = 0
        offer = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1")
        body = offer.json() if offer.status_code == 200 else None
        while body is not None:
            current = body["assignment"]["id"]
            ahead = body["ahead"]["assignment"]["id"] if body["ahead"] else None
            stored = client.post(
                f"/api/v1/assignments/{current}/answer-and-next/?ahead=1",
                {"label": "sad"},
                format="json",
            )
            assert stored.status_code == 201
            answered += 1
            body = stored.json()["next"]
            if ahead is not None:  # the clip held ahead is the next one on screen
                assert body is not None and body["assignment"]["id"] == ahead
        return answered

    answered = run_together(tokens, work)

    assert sum(answered) == 3 * len(tasks)
    assert_no_clip_over_its_need(campaign)
    assert not Assignment.objects.filter(state="active").exists()
    assert Counter(Vote.objects.values_list("task_id", flat=True)) == {t.pk: 3 for t in tasks}
    assert set(Task.objects.values_list("status", "vote_count")) == {("trusted", 3)}


def test_a_retried_next_from_one_annotator_takes_one_slot():
    campaign = CampaignFactory(votes_per_clip=3)
    TaskFactory.create_batch(5, campaign=campaign)
    token = annotators(campaign, 1)[0]

    bodies = run_together(
        [token] * 10, lambda c: c.post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    )

    assert len({b["assignment"]["id"] for b in bodies}) == 1
    assert Assignment.objects.count() == 1
    assert sum(Task.objects.values_list("lease_count", flat=True)) == 1


def test_a_double_submitted_answer_is_stored_once():
    campaign = CampaignFactory(votes_per_clip=3)
    task = TaskFactory(campaign=campaign)
    token = annotators(campaign, 1)[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assignment_id = client.post(f"/api/v1/campaigns/{campaign.pk}/next/").json()["assignment"]
    url = f"/api/v1/assignments/{assignment_id['id']}/answer/"

    codes = run_together(
        [token] * 10, lambda c: c.post(url, {"label": "fear"}, format="json").status_code
    )

    assert Counter(codes) == {201: 1, 200: 9}
    assert Vote.objects.filter(task=task).count() == 1
    task.refresh_from_db()
    assert (task.vote_count, task.lease_count) == (1, 0)


def test_abandoned_leases_are_taken_over_and_every_clip_still_gets_its_votes():
    campaign = CampaignFactory(votes_per_clip=3)
    tasks = TaskFactory.create_batch(8, campaign=campaign)
    tokens = annotators(campaign, 30, prefix="tab")

    def work(client) -> None:
        for round_ in range(1000):
            response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/")
            if response.status_code == 204:
                return
            assignment_id = response.json()["assignment"]["id"]
            if round_ % 3 == 0:
                # The tab is closed: the lease simply runs out (time is moved, not waited for).
                Assignment.objects.filter(pk=assignment_id).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )
                continue
            stored = client.post(
                f"/api/v1/assignments/{assignment_id}/answer/", {"label": "angry"}, format="json"
            )
            assert stored.status_code == 201

    run_together(tokens, work)

    assert_no_clip_over_its_need(campaign)
    assert Counter(Vote.objects.values_list("task_id", flat=True)) == {t.pk: 3 for t in tasks}
    assert Assignment.objects.filter(state="expired").exists()


def test_an_answer_whose_promotion_meets_a_new_current_lease_is_stored_all_the_same():
    """answer-and-next/ makes the lease ahead current in the answer's own statement. When
    another request of the user took a current lease meanwhile (possible once the answered
    lease had expired: it no longer holds the current place), that promotion fails on the
    unique constraint: the answer is stored alone, and the next clip is the new current one."""
    from annotations import services

    campaign = CampaignFactory(votes_per_clip=3)
    TaskFactory.create_batch(4, campaign=campaign)
    token = annotators(campaign, 1)[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1").json()
    current, ahead = body["assignment"]["id"], body["ahead"]["assignment"]["id"]
    Assignment.objects.filter(pk=current).update(expires_at=timezone.now() - timedelta(seconds=1))
    services.leases_expire(campaign_id=campaign.pk)
    user_id = Assignment.objects.get(pk=current).annotator_id
    taken = Task.objects.exclude(assignments__annotator_id=user_id).first()
    answered: list = []

    def answer():
        try:
            url = f"/api/v1/assignments/{current}/answer-and-next/?ahead=1"
            answered.append(client.post(url, {"label": "fear"}, format="json"))
        finally:
            connection.close()

    with transaction.atomic():
        # Hold the lease ahead, so that the answer's promotion waits for it ...
        Assignment.objects.select_for_update().get(pk=ahead)
        thread = threading.Thread(target=answer)
        thread.start()
        with connection.cursor() as cursor:
            for _ in range(400):
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # else read once a transaction
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                thread.join(timeout=30)
                shown = answered and (answered[0].status_code, answered[0].content)
                raise AssertionError(f"the answer never waited for the lease ahead: {shown}")
        # ... while another request of the user takes a current lease.
        new = Assignment.objects.create(
            campaign=campaign, task=taken, annotator_id=user_id, state="active",
            holds_slot=False, ahead=False, expires_at=timezone.now() + timedelta(minutes=5),
        )  # fmt: skip
    thread.join(timeout=30)

    response = answered[0]
    assert response.status_code == 201, response.content
    assert response.json()["next"]["assignment"]["id"] == new.pk
    assert response.json()["next"]["ahead"]["assignment"]["id"] == ahead
    assert Vote.objects.filter(assignment_id=current).count() == 1
    assert Assignment.objects.get(pk=current).state == "answered"
    assert Assignment.objects.get(pk=ahead).ahead is True


def test_an_answer_is_stored_while_a_campaign_edit_is_open():
    """An admin's edit holds the campaign row for its whole transaction (with a scene priority
    change, while it rewrites the scene's tasks). Every answer's commit share-locks that row's
    key (the vote's foreign key): the edit's lock leaves the key alone, so answers go on; it
    held them all up, and could deadlock with an answer holding a task row the edit waited for."""
    from annotations.campaigns import campaign_update

    campaign = CampaignFactory()
    TaskFactory(campaign=campaign)
    admin = UserFactory(username="editor")
    (token,) = annotators(campaign, 1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assignment = client.post(f"/api/v1/campaigns/{campaign.pk}/next/").json()["assignment"]["id"]
    locked, release = threading.Event(), threading.Event()

    def edit():
        try:
            with transaction.atomic():
                campaign_update(campaign=campaign, actor=admin, description="edited")
                locked.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    editor = threading.Thread(target=edit)
    editor.start()
    try:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        response = client.post(
            f"/api/v1/assignments/{assignment}/answer/", {"label": "sad"}, format="json"
        )
        waited = time.monotonic() - started
    finally:
        release.set()
        editor.join()
    assert response.status_code == 201
    assert waited < 5, waited
    assert Vote.objects.filter(assignment_id=assignment).count() == 1
