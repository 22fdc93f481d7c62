"""The Django admin lists tasks, leases and votes but never edits them (counters, consensus)."""

import pytest

from annotations.models import Assignment, Task, Vote
from tests.factories import UserFactory, voted_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


@pytest.fixture
def root(client):
    """A logged-in superuser."""
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", ["task", "assignment", "vote"])
def test_tasks_leases_and_votes_are_listed_and_searchable_but_never_edited(
    root, campaign, alice, bob, model
):
    task = voted_task(campaign, [3, 3], [alice, bob])
    Assignment.objects.create(
        campaign=campaign, task=task, annotator=alice, state="answered", expires_at=task.updated_at
    )
    row = {"task": task, "assignment": Assignment.objects.get(), "vote": Vote.objects.first()}[
        model
    ]
    base = f"/admin/annotations/{model}/"
    assert root.get(base).status_code == 200
    assert root.get(base, {"q": "alice"}).status_code == 200
    assert root.get(base, {"q": str(row.pk)}).status_code == 200
    assert root.get(f"{base}add/").status_code == 403
    assert root.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    # The change page only shows the row; a POST to it changes nothing.
    assert root.get(f"{base}{row.pk}/change/").status_code == 200
    root.post(f"{base}{row.pk}/change/", {"vote_count": 99, "answer": 0, "state": "active"})
    task.refresh_from_db()
    assert (task.vote_count, Vote.objects.filter(answer=0).count()) == (2, 0)
    assert Assignment.objects.get().state == "answered"
    assert Task.objects.count() == 1 and Vote.objects.count() == 2
