"""Round trips of the annotation loop's requests: an upper bound on each (PostgreSQL).

Counts are deterministic, so a change that adds a query to the hot path fails here. The loop
is what a browser does: next/ (with a clip ahead), then answer/ or answer-and-next/?ahead=1.
Every statement the request sends counts, BEGIN/COMMIT/SAVEPOINT included (the test clients
go through the whole stack: middleware, token authentication, the view, the serializer).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import TaskFactory

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("live_db")]

# Upper bounds; see bench/README.md ("Where the time goes") for what each query is.
MAX_NEXT = 5  # 4 (the claim counts itself on the membership), and the lease sweep at most
# once a second per process
# A fresh answer is the token lookup and one statement, its own transaction (no BEGIN/COMMIT).
# An answer to a gold clip also asks whether it was a qualification clip (the feedback shown
# after it); the usual answer knows from its own statement that its clip is not gold.
MAX_ANSWER = 2
MAX_ANSWER_AND_NEXT = 3  # 2 (the answer claims the clip ahead in its statement), and the sweep


def _count(client, path, body=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path, body or {}, format="json")
    return response, [q["sql"] for q in captured.captured_queries]


def _warm(client, campaign):
    """Prepare the statements on this connection and sweep the leases once."""
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1")
    body = response.json()
    for offer in (body, body["ahead"]):
        url = f"/api/v1/assignments/{offer['assignment']['id']}/answer/"
        assert client.post(url, {"label": "happy"}, format="json").status_code == 201


@pytest.fixture
def consensus_not_run_inline():
    """The consensus message goes to the broker (a queue nobody reads, emptied afterwards),
    as in production: its work is the worker's, not the request's."""
    from labelstudio_ferv.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = eager
    import redis

    from labelstudio_ferv.queue import pending_taken

    pending_taken("annotations.update_consensus_stale")  # the ids left waiting
    redis.Redis.from_url(app.conf.broker_url).delete(app.conf.task_default_queue)


def test_the_loop_requests_stay_within_their_round_trips(
    api, alice, campaign, consensus_not_run_inline
):
    campaign.gold_share = 0
    campaign.save(update_fields=["gold_share"])
    TaskFactory.create_batch(8, campaign=campaign)
    client = api(alice)
    _warm(client, campaign)

    response, next_queries = _count(client, f"/api/v1/campaigns/{campaign.pk}/next/")
    assert response.status_code == 200
    assignment = response.json()["assignment"]["id"]
    response, answer_queries = _count(
        client, f"/api/v1/assignments/{assignment}/answer/", {"label": "happy"}
    )
    assert response.status_code == 201
    response = client.post(f"/api/v1/campaigns/{campaign.pk}/next/?ahead=1")
    assignment = response.json()["assignment"]["id"]
    response, both_queries = _count(
        client, f"/api/v1/assignments/{assignment}/answer-and-next/?ahead=1", {"label": "sad"}
    )
    assert response.status_code == 201 and response.json()["next"]["ahead"] is not None
    report = {"next": next_queries, "answer": answer_queries, "answer-and-next": both_queries}
    shown = "\n".join(f"{k}: {len(v)}\n  " + "\n  ".join(v) for k, v in report.items())
    print(shown)
    assert len(next_queries) <= MAX_NEXT, shown
    assert len(answer_queries) <= MAX_ANSWER, shown
    assert len(both_queries) <= MAX_ANSWER_AND_NEXT, shown


def test_the_hand_built_responses_equal_the_serializers(api, alice, campaign):
    """next/ and answer/ build their JSON by hand; the serializers (the schema) agree."""
    from rest_framework.test import APIRequestFactory

    from annotations import selectors, services
    from annotations.access import access_campaign
    from annotations.models import Vote
    from annotations.serializers import NextOutput, VoteOutput, offer_data, vote_data

    TaskFactory.create_batch(4, campaign=campaign)
    _, membership = access_campaign(user=alice, campaign_id=campaign.pk)
    offer = services.assignment_next(
        campaign=campaign, membership=membership, user=alice, ahead=True
    )
    request = APIRequestFactory().post("/")
    request.user = alice
    expected = NextOutput(offer, context={"request": request}).data
    assert offer_data(offer, user=alice) == expected
    assert list(offer_data(offer, user=alice)) == list(expected)
    bare = selectors.Offer(offer.assignment_id, offer.expires_at, offer.clip)
    assert offer_data(bare, user=alice) == NextOutput(bare, context={"request": request}).data
    result = services.assignment_answer(
        user=alice, assignment_id=offer.assignment_id, answer=3, time_ms=1200
    )
    stored = Vote.objects.get(pk=result.vote.pk)
    assert vote_data(result.vote) == VoteOutput(stored).data
    assert list(vote_data(result.vote)) == list(VoteOutput(stored).data)


# Every vote inserts into each index of the vote table, and every update of a task or a lease
# (none is a HOT update: indexed columns change) into each index of its table that covers the
# new row. An index whose columns begin another index of the table, unconditionally, only
# costs writes.
HOT_TABLES = ("annotations_task", "annotations_vote", "annotations_assignment")


def test_the_hot_tables_have_no_redundant_index():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, x.indpred IS NOT NULL,
                   array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n
                         ORDER BY k.o)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s) AND NOT x.indisunique
            """,
            [list(HOT_TABLES)],
        )
        plain = cursor.fetchall()
        cursor.execute(
            """
            SELECT t.relname, i.relname,
                   array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.n
                         ORDER BY k.o)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s) AND x.indpred IS NULL
            """,
            [list(HOT_TABLES)],
        )
        complete = cursor.fetchall()
    assert len(plain) >= 8  # the catalog query found the indexes
    redundant = [
        (table, name, other)
        for table, name, partial, columns in plain
        if not partial
        for other_table, other, other_columns in complete
        if other_table == table and other != name and other_columns[: len(columns)] == columns
    ]
    assert redundant == []
