"""The admin journey of issue 15 over the API only: no shell, no Django admin.

A user allowed to create campaigns creates one, creates three annotator accounts and a reviewer,
uploads clips, imports a gold set and labels one more from the stratified gold sample, the
annotators work, the campaign is paused and resumed, the dashboard's numbers and an export follow.
tests/frontend/test_admin_browser.py walks the same journey in the browser.
"""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotations.models import Campaign, Membership, Task, Vote
from clips import synthetic
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

# Six different clips (pattern, size), so none is taken for a copy of another.
CLIPS = [
    ("testsrc2", (224, 224)), ("smptebars", (224, 160)), ("mandelbrot", (160, 224)),
    ("rgbtestsrc", (192, 192)), ("testsrc", (224, 176)), ("yuvtestsrc", (176, 224)),
]  # fmt: skip


def campaign_creator():
    carol = UserFactory(username="carol")
    carol.user_permissions.add(Permission.objects.get(codename="add_campaign"))
    return carol


def token_client(username: str, password: str) -> APIClient:
    answer = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {answer.json()['token']}")
    return client


def test_an_admin_runs_a_campaign_over_the_api_from_creation_to_export(
    api, tmp_path, django_capture_on_commit_callbacks
):
    carol = api(campaign_creator())

    # A campaign, with field errors for rules that cannot work.
    created = carol.post("/api/v1/campaigns/", {"name": "Street scenes"}, format="json")
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    base = f"/api/v1/campaigns/{cid}/"
    assert [(c["id"], c["role"]) for c in carol.get("/api/v1/campaigns/").json()] == [
        (cid, "admin")
    ]
    bad = carol.patch(base, {"votes_per_clip": 4, "max_votes": 3}, format="json")
    assert bad.status_code == 400
    assert "max_votes" in bad.json()["error"]["details"]
    rules = {"aggregation": "majority", "votes_per_clip": 2, "max_votes": 3,
             "min_agreement": 0.5, "gold_share": 0.1}  # fmt: skip
    assert carol.patch(base, rules, format="json").status_code == 200

    # Three annotator accounts and a reviewer, created at once; the passwords work.
    people = [{"username": f"ann{i}"} for i in (1, 2, 3)] + [
        {"username": "rosa", "role": "reviewer"}
    ]
    added = carol.post(
        base + "members/", {"members": people, "create_missing": True}, format="json"
    )
    assert added.status_code == 201, added.json()
    passwords = {r["username"]: r["password"] for r in added.json()["rows"]}
    assert all(passwords.values()) and len(set(passwords.values())) == 4
    members = {m["username"]: m["role"] for m in carol.get(base + "members/").json()}
    assert members == {"carol": "admin", "ann1": "annotator", "ann2": "annotator",
                       "ann3": "annotator", "rosa": "reviewer"}  # fmt: skip
    annotators = {name: token_client(name, passwords[name]) for name in ("ann1", "ann2", "ann3")}
    rosa = token_client("rosa", passwords["rosa"])

    # Clips, uploaded and made ready by the worker (in-process here).
    files = []
    for i, (pattern, size) in enumerate(CLIPS):
        path = synthetic.make_test_video(tmp_path / f"face-{i}.mp4", size=size, pattern=pattern)
        files.append(SimpleUploadedFile(path.name, path.read_bytes()))
    with django_capture_on_commit_callbacks(execute=True):
        uploaded = carol.post(
            base + "clips/", {"files": files, "scene": "Daily-Life"}, format="multipart"
        )
    assert uploaded.status_code == 201, uploaded.json()
    assert uploaded.json()["created"] == len(CLIPS)
    tasks = rosa.get(base + "tasks/").json()
    assert len(tasks["items"]) == len(CLIPS) and tasks["next_after"] is None

    # The reviewer imports a gold set; a bad row first changes nothing.
    gold_csv = f"clip,label\nface-0.mp4,happy\n{tasks['items'][1]['clip']},sad\n"
    refused = rosa.post(
        base + "gold/import/", gold_csv + "no-such.mp4,happy\n", content_type="text/csv"
    )
    assert refused.status_code == 400
    assert [r["status"] for r in refused.json()["error"]["details"]["rows"]] == [
        "gold", "gold", "error",
    ]  # fmt: skip
    assert not Task.objects.filter(campaign_id=cid, is_gold=True).exists()
    imported = rosa.post(base + "gold/import/", gold_csv, content_type="text/csv")
    assert [r["status"] for r in imported.json()["rows"]] == ["gold", "gold"]
    exported = list(csv.reader(io.StringIO(rosa.get(base + "gold/export/").content.decode())))
    assert sorted(row[1:] for row in exported[1:]) == [
        ["face-0.mp4", "happy"],
        ["face-1.mp4", "sad"],
    ]
    # And labels one more in the gold workspace's way: the stratified sample, then the PUT.
    sample = rosa.get(base + "gold/candidates/").json()
    assert sample["coverage"]["gold"] == 2
    pick = sample["items"][0]
    assert pick["clip_name"] not in ("face-0.mp4", "face-1.mp4")
    put = rosa.put(f"{base}tasks/{pick['task']}/gold/", {"gold_label": "fear"}, format="json")
    assert put.status_code == 200
    gold_only = rosa.get(base + "tasks/?gold=true").json()["items"]
    assert {t["clip_name"]: t["gold_label"] for t in gold_only} == {
        "face-0.mp4": "happy", "face-1.mp4": "sad", pick["clip_name"]: "fear",
    }  # fmt: skip

    # Each annotator answers two clips.
    for client in annotators.values():
        offer = client.post(base + "next/").json()
        for _ in range(2):
            answered = client.post(
                f"/api/v1/assignments/{offer['assignment']['id']}/answer-and-next/",
                {"label": "happy", "time_ms": 1500},
                format="json",
            )
            assert answered.status_code == 201, answered.json()
            offer = answered.json()["next"]
    assert Vote.objects.filter(task__campaign_id=cid).count() == 6

    # Paused: nobody gets a clip, and is told why; resumed: work goes on.
    assert carol.post(base + "pause/").json()["state"] == "paused"
    refused = annotators["ann1"].post(base + "next/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "campaign_paused"
    assert "paused" in refused.json()["error"]["message"]
    assert rosa.post(base + "resume/").status_code == 403  # reviewers do not run the campaign
    assert carol.post(base + "resume/").json()["state"] == "active"
    assert annotators["ann1"].post(base + "next/").status_code == 200

    # The dashboard's numbers, and an export.
    progress = rosa.get(base + "progress/").json()
    assert (progress["clips"], progress["gold"], progress["votes"]) == (len(CLIPS), 3, 6)
    with django_capture_on_commit_callbacks(execute=True):
        job = carol.post(base + "exports/", {"kind": "labels"}, format="json")
    assert job.status_code in (200, 201, 202), job.json()
    done = carol.get(f"{base}exports/{job.json()['id']}/").json()
    assert done["status"] == "done", done

    # Everything is in the audit log, newest first, with who did it.
    audit = rosa.get(base + "audit/").json()["items"]
    assert [(e["action"], e["actor"]) for e in audit] == [
        ("campaign_resumed", "carol"), ("campaign_paused", "carol"),
        ("gold_set", "rosa"), ("gold_imported", "rosa"), ("members_added", "carol"),
        ("campaign_edited", "carol"), ("campaign_created", "carol"),
    ]  # fmt: skip
    campaign = Campaign.objects.get(pk=cid)
    assert (campaign.state, campaign.votes_per_clip) == ("active", 2)
    assert Membership.objects.filter(campaign=campaign).count() == 5
