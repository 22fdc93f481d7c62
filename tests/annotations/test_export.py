"""Exports: labels CSV, votes CSV and the FERV39k release, as training code and people read them."""

import csv
import io
import json
import re
import zipfile
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from annotations import exports
from annotations.models import Campaign, ExportJob, Role, Task
from annotations.tasks import run_export
from clips import synthetic
from clips.models import Scene
from labelstudio_ferv.expressions import CLASS_NAMES, Answer
from tests.factories import (
    CampaignFactory,
    ClipFactory,
    MembershipFactory,
    TaskFactory,
    UserFactory,
    voted_task,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

H, S, N, P, F, SU = (
    Answer.HAPPY, Answer.SAD, Answer.NEUTRAL, Answer.PASS, Answer.FEAR, Answer.SURPRISE,
)  # fmt: skip


@pytest.fixture
def voters(campaign):
    users = [UserFactory(username=f"voter{i}") for i in range(5)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    return users


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    """POST as a user, running on-commit callbacks (the export's enqueue) as a commit would."""

    def send(user, url, body):
        with django_capture_on_commit_callbacks(execute=True):
            return api(user).post(url, body, format="json")

    return send


def read_export(job: ExportJob) -> bytes:
    job.refresh_from_db()
    assert job.status == "done", job.error
    with default_storage.open(job.file.name, "rb") as fh:
        return fh.read()


def run_job(campaign, kind, **params) -> ExportJob:
    job = ExportJob.objects.create(
        campaign=campaign,
        kind=kind,
        params=exports.check_params(kind=kind, params=params, role=Role.ADMIN),
    )
    run_export(job.pk)
    return job


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def test_the_labels_csv_has_one_row_per_clip_with_a_final_label(
    api, post, campaign, voters, rita, adam
):
    unanimous = voted_task(campaign, [H, H, H], voters)
    majority = voted_task(campaign, [S, S, P], voters)
    disputed = voted_task(campaign, [F, SU, F, SU, N], voters)
    voted_task(campaign, [P, P, H], voters)  # discarded
    voted_task(campaign, [H, S], voters)  # still collecting
    gold = voted_task(campaign, [H, H, H], voters, is_gold=True, gold_label=int(H))
    decided = api(rita).post(
        f"/api/v1/campaigns/{campaign.pk}/review/tasks/{disputed.pk}/decisions/",
        {"action": "label", "label": "surprise", "version": 0},
        format="json",
    )
    assert decided.status_code == 200

    response = post(adam, f"/api/v1/campaigns/{campaign.pk}/exports/", {"kind": "labels"})
    assert response.status_code == 202, response.json()
    job = ExportJob.objects.get(pk=response.json()["id"])
    text = read_export(job).decode()
    assert text.splitlines()[0] == (
        "clip_id,path,name,scenario,scene,label,label_index,how,agreement,"
        "angry,disgust,fear,happy,neutral,sad,surprise,pass,votes"
    )
    rows = {int(r["clip_id"]): r for r in csv_rows(text.encode())}
    assert set(rows) == {unanimous.clip_id, majority.clip_id, disputed.clip_id}
    row = rows[majority.clip_id]
    assert (row["label"], row["label_index"], row["how"], row["agreement"]) == (
        "Sad", "5", "majority", "0.6667",
    )  # fmt: skip
    assert (row["sad"], row["pass"], row["happy"], row["votes"]) == ("2", "1", "0", "3")
    assert row["path"] == majority.clip.video.name and row["scene"] == majority.clip.scene.folder
    assert row["scenario"] == majority.clip.scene.scenario.name
    assert (rows[unanimous.clip_id]["how"], rows[unanimous.clip_id]["label_index"]) == (
        "unanimous", "3",
    )  # fmt: skip
    row = rows[disputed.clip_id]
    assert (row["label"], row["how"], row["agreement"]) == ("Surprise", "adjudicated", "0.4")

    with_gold = csv_rows(read_export(run_job(campaign, "labels", include_gold=True)))
    assert {int(r["clip_id"]): r["how"] for r in with_gold}[gold.clip_id] == "gold"
    assert len(with_gold) == 4


def test_the_votes_csv_pseudonymises_annotators_unless_an_admin_asks(
    api, post, campaign, voters, rita, adam
):
    tasks = [voted_task(campaign, [H, S, H], voters) for _ in range(3)]
    url = f"/api/v1/campaigns/{campaign.pk}/exports/"
    job = ExportJob.objects.get(pk=post(rita, url, {"kind": "votes"}).json()["id"])
    rows = csv_rows(read_export(job))
    assert len(rows) == 9
    assert list(rows[0]) == exports.VOTE_COLUMNS
    names = {r["annotator"] for r in rows}
    assert len(names) == 3 and not names & {"voter0", "voter1", "voter2"}
    assert all(re.fullmatch(r"a[0-9a-f]{12}", name) for name in names)
    assert {r["clip_id"] for r in rows} == {str(t.clip_id) for t in tasks}
    assert Counter(r["answer"] for r in rows) == {"happy": 6, "sad": 3}
    # Stable across exports of the campaign, different in another campaign.
    again = csv_rows(read_export(run_job(campaign, "votes")))
    assert [r["annotator"] for r in again] == [r["annotator"] for r in rows]
    assert exports.pseudonym(campaign_id=campaign.pk + 1, user_id=voters[0].pk) not in names

    refused = post(rita, url, {"kind": "votes", "params": {"pseudonymise": False}})
    assert refused.status_code == 403
    named = post(adam, url, {"kind": "votes", "params": {"pseudonymise": False}})
    assert named.status_code == 202
    rows = csv_rows(read_export(ExportJob.objects.get(pk=named.json()["id"])))
    assert {r["annotator"] for r in rows} == {"voter0", "voter1", "voter2"}
    # Only admins get the link to a file with usernames.
    status = url + f"{named.json()['id']}/"
    assert api(adam).get(status).json()["download_url"]
    assert api(rita).get(status).json()["download_url"] is None
    assert api(rita).get(url).json()[0]["download_url"] is None
    assert api(rita).get(url + f"{job.pk}/").json()["download_url"]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t"])
def test_a_cell_starting_with_a_formula_character_comes_out_inert(campaign, start):
    payload = f'{start}HYPERLINK("http://evil.example","x")'
    evil = UserFactory(username=f"{start}evil"[:150])
    MembershipFactory(campaign=campaign, user=evil, role=Role.ANNOTATOR)
    voters = [evil] + [UserFactory(username=f"v{i}") for i in range(2)]
    task = voted_task(campaign, [H, H, H], voters, clip=ClipFactory(name=payload))
    (row,) = csv_rows(read_export(run_job(campaign, "labels")))
    assert row["name"] == "'" + payload
    assert int(row["clip_id"]) == task.clip_id
    votes = csv_rows(read_export(run_job(campaign, "votes", pseudonymise=False)))
    assert {r["annotator"] for r in votes} == {f"'{start}evil", "v0", "v1"}
    for cell in [row["name"], *(r["annotator"] for r in votes)]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def release_campaign(sizes: dict[tuple[str, int], int]) -> Campaign:
    """A campaign whose trusted clips fill scene x class cells of the given sizes."""
    campaign = CampaignFactory()
    tasks = []
    for (folder, label), n in sizes.items():
        scene = Scene.objects.get(folder=folder)
        for _ in range(n):
            tasks.append(
                TaskFactory.build(
                    campaign=campaign, clip=ClipFactory(scene=scene), status="trusted",
                    label=label, counts=[0] * 8, vote_count=3,
                )
            )  # fmt: skip
    Task.objects.bulk_create(tasks)
    TaskFactory(campaign=campaign, status="discarded")  # never in the release
    return campaign


SIZES = {
    ("Action", 0): 1, ("Action", 3): 7, ("Action", 4): 23, ("School", 4): 2,
    ("School", 5): 12, ("War", 2): 5, ("War", 6): 40, ("DailyLife", 1): 3,
}  # fmt: skip


def read_release(job: ExportJob, tmp_path, name: str) -> pd.DataFrame:
    with zipfile.ZipFile(io.BytesIO(read_export(job))) as archive:
        path = tmp_path / f"{job.pk}-{name}"
        path.write_bytes(archive.read(name))
    return pd.read_csv(path, header=None, delimiter=" ")


def test_the_release_files_are_read_by_training_code_with_a_stratified_seeded_split(tmp_path):
    campaign = release_campaign(SIZES)
    share = 0.25
    job = run_job(campaign, "release", test_share=share, seed=7, include_media=False)
    train = read_release(job, tmp_path, "train_All.csv")
    test = read_release(job, tmp_path, "test_All.csv")
    assert len(train) + len(test) == sum(SIZES.values())
    assert list(train.columns) == [0, 1] and list(test.columns) == [0, 1]
    both = pd.concat([train, test])
    assert both[0].is_unique
    for path, word in zip(both[0], both[1], strict=True):
        scene, emotion, number = path.split("/")
        assert emotion == word and word in CLASS_NAMES and re.fullmatch(r"\d{4}", number)
    # Every scene x class cell is within one clip of the requested test share.
    for (folder, label), n in SIZES.items():
        cell = f"{folder}/{CLASS_NAMES[label]}/"
        in_test = test[0].str.startswith(cell).sum()
        in_train = train[0].str.startswith(cell).sum()
        assert in_test + in_train == n
        assert abs(in_test - share * n) <= 1, (cell, in_test, n)
        numbers = sorted(int(p.rsplit("/", 1)[1]) for p in both[0] if p.startswith(cell))
        assert numbers == list(range(1, n + 1))

    # The same seed gives the same split; another seed (almost surely) another.
    same = run_job(campaign, "release", test_share=share, seed=7, include_media=False)
    assert read_release(same, tmp_path, "test_All.csv").equals(test)
    assert read_release(same, tmp_path, "train_All.csv").equals(train)
    other = run_job(campaign, "release", test_share=share, seed=8, include_media=False)
    assert not read_release(other, tmp_path, "test_All.csv").equals(test)


def test_the_release_archive_holds_each_clips_frames_under_its_path(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    campaign = CampaignFactory()
    action = Scene.objects.get(folder="Action")
    for i, label in enumerate([H, H, S]):
        video = f"clips/frames-{i}.mp4"
        target = settings.MEDIA_ROOT / video
        target.parent.mkdir(parents=True, exist_ok=True)
        synthetic.make_test_video(target, seconds=0.4, fps=10, size=(64, 64))
        clip = ClipFactory(scene=action, video=video)
        TaskFactory(campaign=campaign, clip=clip, status="trusted", label=int(label))
    job = run_job(campaign, "release", test_share=0.5, seed=1)
    with zipfile.ZipFile(io.BytesIO(read_export(job))) as archive:
        names = archive.namelist()
        lines = sorted(
            (archive.read("train_All.csv") + archive.read("test_All.csv")).decode().splitlines()
        )
        assert archive.read(names[0])[:3] == b"\xff\xd8\xff"  # a JPEG
    assert lines == ["Action/Happy/0001 Happy", "Action/Happy/0002 Happy", "Action/Sad/0001 Sad"]
    for folder in ("Action/Happy/0001", "Action/Happy/0002", "Action/Sad/0001"):
        frames = sorted(n for n in names if n.startswith(folder + "/"))
        assert frames[0] == f"{folder}/00001.jpg" and len(frames) == 4


def test_an_export_reports_progress_and_a_download_link(api, post, campaign, voters, rita):
    for _ in range(3):
        voted_task(campaign, [H, H, S], voters)
    url = f"/api/v1/campaigns/{campaign.pk}/exports/"
    created = post(rita, url, {"kind": "labels"})
    assert created.status_code == 202
    status = api(rita).get(url + f"{created.json()['id']}/").json()
    assert (status["status"], status["rows_done"], status["rows_total"]) == ("done", 3, 3)
    assert status["progress"] == 1.0 and status["created_by"] == "rita"
    job = ExportJob.objects.get(pk=status["id"])
    # A link signed for rita (tests/test_media.py checks who may follow it).
    link = urlsplit(status["download_url"])
    assert link.path == default_storage.url(job.file.name) and "s=" in link.query
    assert len(csv_rows(read_export(job))) == 3
    assert [j["id"] for j in api(rita).get(url).json()] == [job.pk]

    other = CampaignFactory()
    foreign = ExportJob.objects.create(campaign=other, kind="labels")
    assert api(rita).get(url + f"{foreign.pk}/").status_code == 404
    for body in (
        {"kind": "pictures"},
        {"kind": "release", "params": {"test_share": 1.5}},
        {"kind": "release", "params": {"seed": "x"}},
        {"kind": "labels", "params": {"colour": True}},
    ):
        assert api(rita).post(url, body, format="json").status_code == 400, body
    assert ExportJob.objects.filter(campaign=campaign).count() == 1


def test_a_job_done_stays_done_and_a_dead_workers_job_is_rewritten_from_scratch(campaign, voters):
    voted_task(campaign, [H, H, S], voters)
    job = run_job(campaign, "labels")
    first = read_export(job)
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    assert job.attempt == 1 and read_export(job) == first

    # A worker died mid-export: the job is left running, its heartbeat old, a half file stored.
    voted_task(campaign, [S, S, S], voters)
    stale = timezone.now() - timedelta(seconds=exports.STALE_AFTER_S + 5)
    job = ExportJob.objects.create(
        campaign=campaign, kind="labels", status="running", attempt=1, heartbeat_at=stale,
        rows_done=1, params={"include_gold": False},
    )  # fmt: skip
    path = default_storage.path(exports.stored_name(job))
    default_storage.save(exports.stored_name(job), io.BytesIO(b"clip_id,pa"))
    assert run_export(job.pk) == "done"
    job.refresh_from_db()
    assert (job.attempt, job.rows_done, job.file.name) == (2, 2, exports.stored_name(job))
    assert len(csv_rows(read_export(job))) == 2
    assert default_storage.path(job.file.name) == path

    # A run that still holds a fresh heartbeat is left alone.
    busy = ExportJob.objects.create(
        campaign=campaign, kind="labels", status="running", attempt=1,
        heartbeat_at=timezone.now(), params={"include_gold": False},
    )  # fmt: skip
    assert run_export(busy.pk) == exports.BUSY
    busy.refresh_from_db()
    assert (busy.status, busy.attempt) == ("running", 1)
    assert run_export(10**9) is None  # a job gone is not an error


def test_the_management_command_exports_like_the_api(campaign, voters, tmp_path):
    voted_task(campaign, [H, H, S], voters)
    out = io.StringIO()
    call_command("export_campaign", str(campaign.pk), kind="labels", output=tmp_path / "l.csv",
                 stdout=out)  # fmt: skip
    assert "1 rows" in out.getvalue()
    assert len(csv_rows((tmp_path / "l.csv").read_bytes())) == 1
    call_command(
        "export_campaign", campaign.name, kind="release", no_media=True, seed=3,
        output=tmp_path / "r.zip", stdout=out,
    )  # fmt: skip
    with zipfile.ZipFile(tmp_path / "r.zip") as archive:
        # The blind audit's measured precision sits beside the split files (none audited yet).
        assert sorted(archive.namelist()) == [
            "audit_precision.json",
            "test_All.csv",
            "train_All.csv",
        ]
        audit = json.loads(archive.read("audit_precision.json"))
        assert (audit["audited"], audit["precision"], audit["share"]) == (0, None, 0.02)
    job = ExportJob.objects.filter(kind="release").get()
    assert job.params == {
        "test_share": 0.2, "seed": 3, "include_media": False, "include_gold": False,
    }  # fmt: skip


def test_the_management_command_refuses_what_the_service_refuses(campaign):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="test_share"):
        call_command("export_campaign", str(campaign.pk), kind="release", test_share=2.0)
    assert not ExportJob.objects.exists()
