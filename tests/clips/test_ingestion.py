"""Clip ingestion through the API, the import command and the workers, with real media files."""

import json
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations.models import Task
from clips import media, synthetic
from clips.models import Clip, MediaStatus
from clips.services import clip_process
from tests.conftest import WorkerProcess, wait_for
from tests.factories import ClipFactory


def ffprobe(path: str) -> dict:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def assert_browser_ready(clip: Clip) -> None:
    """The clip plays in any browser: H.264 yuv420p, constant rate, even size, no audio."""
    assert clip.status == MediaStatus.READY, clip.error
    info = ffprobe(clip.video.path)
    streams = info["streams"]
    assert [s["codec_type"] for s in streams] == ["video"]
    video = streams[0]
    assert video["codec_name"] == "h264" and video["pix_fmt"] == "yuv420p"
    assert video["r_frame_rate"] == video["avg_frame_rate"]
    assert video["width"] % 2 == 0 and video["height"] % 2 == 0
    assert (clip.width, clip.height) == (video["width"], video["height"])
    assert clip.frame_count == int(video["nb_frames"])
    assert clip.duration_s == pytest.approx(float(info["format"]["duration"]), abs=0.1)
    with open(clip.video.path, "rb") as handle:
        head = handle.read(4096)
    assert head.find(b"moov") != -1, "moov atom must come first (+faststart)"
    with open(clip.poster.path, "rb") as handle:
        assert handle.read(3) == b"\xff\xd8\xff"


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


@pytest.fixture
def inputs(tmp_path):
    """Real clips made by ffmpeg in the formats people send."""
    made = {
        "mp4": synthetic.make_test_video(tmp_path / "plain.mp4", seconds=1.2),
        "avi": synthetic.make_test_video(
            tmp_path / "odd.avi", seconds=1.0, size=(225, 223), codec="mpeg4"
        ),
        "vfr": synthetic.make_test_video(tmp_path / "vfr.mp4", seconds=1.5, vfr=True),
    }
    good = (tmp_path / "plain.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 20)
    made["truncated"] = tmp_path / "truncated.mp4"
    made["text"] = tmp_path / "notes.mp4"
    return made


@pytest.mark.django_db
def test_uploaded_mp4_avi_and_vfr_clips_become_browser_ready(
    api, adam, campaign, inputs, django_capture_on_commit_callbacks
):
    files = [upload(inputs["mp4"]), upload(inputs["avi"]), upload(inputs["vfr"])]
    with django_capture_on_commit_callbacks(execute=True):
        response = api(adam).post(
            f"/api/v1/campaigns/{campaign.pk}/clips/",
            {"files": files, "scene": ["Speech", "War", "Daily-Life"]},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["existing"], body["rejected"]) == (3, 0, 0)
    clips = {c.name: c for c in Clip.objects.all()}
    assert set(clips) == {"plain.mp4", "odd.avi", "vfr.mp4"}
    assert clips["odd.avi"].scene.folder == "War"
    assert clips["vfr.mp4"].scene.folder == "DailyLife"
    for clip in clips.values():
        assert_browser_ready(clip)
        assert clip.original.storage.exists(clip.original.name)  # the original is kept
    assert (clips["odd.avi"].width, clips["odd.avi"].height) in {(224, 222), (226, 224)}
    assert clips["plain.mp4"].frame_count == 30
    assert Task.objects.filter(campaign=campaign).count() == 3


@pytest.mark.django_db
def test_bad_inputs_get_clear_errors_and_lose_nothing_else_in_the_batch(
    api, adam, campaign, inputs, settings, django_capture_on_commit_callbacks
):
    settings.CLIP_MAX_UPLOAD_BYTES = 40_000
    big = SimpleUploadedFile("huge.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\0" * 60_000)
    files = [upload(inputs["mp4"]), upload(inputs["truncated"]), upload(inputs["text"]), big]
    with django_capture_on_commit_callbacks(execute=True):
        response = api(adam).post(
            f"/api/v1/campaigns/{campaign.pk}/clips/",
            {"files": files, "scene": "Interview"},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    results = {r["name"]: r for r in response.json()["results"]}
    assert results["plain.mp4"]["status"] == "created"
    assert results["notes.mp4"]["status"] == "rejected"
    assert "not a video" in results["notes.mp4"]["message"]
    assert results["huge.mp4"]["status"] == "rejected"
    assert "limit" in results["huge.mp4"]["message"]
    # A truncated video looks like a video; it is accepted and fails in the worker with
    # ffmpeg's reason, keeping its original for inspection.
    assert results["truncated.mp4"]["status"] == "created"
    good = Clip.objects.get(name="plain.mp4")
    assert_browser_ready(good)
    broken = Clip.objects.get(name="truncated.mp4")
    assert broken.status == MediaStatus.FAILED
    assert broken.error and len(broken.error) < 500
    assert not broken.video and broken.original.storage.exists(broken.original.name)
    assert Clip.objects.count() == 2  # nothing stored for the text file or the oversized one

    progress = api(adam).get(f"/api/v1/campaigns/{campaign.pk}/ingestion/").json()
    assert (progress["total"], progress["ready"], progress["failed"]) == (2, 1, 1)
    assert progress["failures"][0]["name"] == "truncated.mp4"
    assert progress["failures"][0]["error"] == broken.error
    detail = api(adam).get(f"/api/v1/campaigns/{campaign.pk}/clips/{broken.pk}/").json()
    assert detail["status"] == "failed" and detail["error"] == broken.error


@pytest.mark.django_db
def test_an_upload_with_only_bad_files_is_refused_with_the_reasons(api, adam, campaign, inputs):
    response = api(adam).post(
        f"/api/v1/campaigns/{campaign.pk}/clips/",
        {"files": [upload(inputs["text"])], "scene": "Interview"},
        format="multipart",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "No clip was accepted" in error["message"] and "not a video" in error["message"]
    assert not Clip.objects.exists()


@pytest.mark.django_db
def test_an_unknown_scene_or_a_missing_field_is_refused(api, adam, campaign, inputs):
    url = f"/api/v1/campaigns/{campaign.pk}/clips/"
    response = api(adam).post(
        url, {"files": [upload(inputs["mp4"])], "scene": "Mars"}, format="multipart"
    )
    assert response.status_code == 400
    assert "no scene" in response.json()["error"]["message"]
    response = api(adam).post(url, {"files": [upload(inputs["mp4"])]}, format="multipart")
    assert response.status_code == 400 and "scene" in response.json()["error"]["message"]
    assert not Clip.objects.exists()


@pytest.mark.django_db
def test_only_campaign_admins_upload_and_strangers_learn_nothing(
    api, alice, rita, stranger, campaign, inputs
):
    url = f"/api/v1/campaigns/{campaign.pk}/clips/"
    data = {"files": [upload(inputs["mp4"])], "scene": "Speech"}
    assert api(alice).post(url, data, format="multipart").status_code == 403
    assert api(rita).post(url, data, format="multipart").status_code == 403
    response = api(stranger).post(url, data, format="multipart")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Campaign not found."}}
    assert api(stranger).get(f"/api/v1/campaigns/{campaign.pk}/ingestion/").status_code == 404
    assert api(alice).get(f"/api/v1/campaigns/{campaign.pk}/ingestion/").status_code == 403
    assert api().post(url, data, format="multipart").status_code == 401
    assert not Clip.objects.exists()


def make_release_tree(root: Path) -> None:
    """A FERV39k-style tree: <Scene>/<Emotion>/<id>/<frames>, plus a stray file."""
    synthetic.make_test_frames(root / "Action" / "Sad" / "0010", n=12)
    synthetic.make_test_frames(root / "Crisis" / "Fear" / "0003", n=9, size=(200, 200))
    frames = sorted((root / "Crisis" / "Fear" / "0003").iterdir())
    frames[0].rename(frames[0].with_name("1.jpg"))  # unpadded names sort naturally
    (root / "Action" / "readme.txt").write_text("not a clip")


@pytest.mark.django_db
def test_import_command_takes_release_frame_folders_and_is_resumable(
    campaign, tmp_path, capsys, django_capture_on_commit_callbacks
):
    make_release_tree(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_clips", campaign=str(campaign.pk), folder=tmp_path)
    out = capsys.readouterr()
    assert "2 imported, 0 already there, 1 rejected" in out.out
    assert "readme.txt" in out.err and "not a video" in out.err
    sad = Clip.objects.get(name="Action/Sad/0010")
    fear = Clip.objects.get(name="Crisis/Fear/0003")
    assert (sad.scene.folder, fear.scene.folder) == ("Action", "Crisis")
    assert sad.reference_label is None and fear.reference_label is None  # off by default
    assert_browser_ready(sad)
    assert_browser_ready(fear)
    assert (sad.frame_count, fear.frame_count) == (12, 9)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_clips", campaign=campaign.name, folder=tmp_path)
    assert "0 imported, 2 already there" in capsys.readouterr().out
    assert Clip.objects.count() == 2
    assert Task.objects.filter(campaign=campaign).count() == 2


@pytest.mark.django_db
def test_reference_labels_from_release_paths_are_kept_only_when_asked(campaign, tmp_path):
    make_release_tree(tmp_path)
    call_command("import_clips", campaign=str(campaign.pk), folder=tmp_path, reference_labels=True)
    labels = dict(Clip.objects.values_list("name", "reference_label"))
    assert labels == {"Action/Sad/0010": 5, "Crisis/Fear/0003": 2}


@pytest.mark.django_db
def test_manifest_paths_cannot_escape_the_import_folder(campaign, tmp_path, capsys):
    root = tmp_path / "import"
    root.mkdir()
    synthetic.make_test_video(root / "ok.mp4", seconds=0.5)
    synthetic.make_test_video(tmp_path / "secret.mp4", seconds=0.5, pattern="smptebars")
    manifest = root / "manifest.csv"
    manifest.write_text(
        "path,scene,start_s,end_s\nok.mp4,Speech,1.5,2.0\n../secret.mp4,Speech,,\n"
        "/etc/passwd,Speech,,\n"
    )
    call_command("import_clips", campaign=str(campaign.pk), manifest=manifest)
    err = capsys.readouterr().err
    assert err.count("leaves the import folder") == 2
    assert list(Clip.objects.values_list("name", "start_s", "end_s")) == [("ok.mp4", 1.5, 2.0)]


@pytest.mark.django_db
def test_a_task_run_twice_on_the_same_clip_does_the_work_once(
    campaign, tmp_path, django_capture_on_commit_callbacks, monkeypatch
):
    synthetic.make_test_video(tmp_path / "a.mp4", seconds=0.8)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_clips", campaign=str(campaign.pk), manifest=_manifest(tmp_path))
    clip = Clip.objects.get()
    assert clip.status == MediaStatus.READY
    stamp = Path(clip.video.path).stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(media, "transcode", lambda *a, **k: calls.append(a))
    clip_process(clip_id=clip.pk)  # a second delivery of the same task
    assert calls == []
    assert Path(clip.video.path).stat().st_mtime_ns == stamp
    assert Clip.objects.get().updated_at == clip.updated_at


def _manifest(folder: Path) -> Path:
    manifest = folder / "manifest.csv"
    names = sorted(p.name for p in folder.glob("*.mp4"))
    manifest.write_text("path,scene\n" + "".join(f"{n},Speech\n" for n in names))
    return manifest


@pytest.mark.django_db
def test_failed_clips_can_be_retried_by_an_admin(
    api, adam, alice, campaign, django_capture_on_commit_callbacks
):
    clip = ClipFactory(status=MediaStatus.FAILED, video="", poster="", error="disk full")
    Task.objects.create(campaign=campaign, clip=clip)
    url = f"/api/v1/campaigns/{campaign.pk}/ingestion/retry/"
    assert api(alice).post(url, {}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api(adam).post(url, {"clip_ids": [clip.pk]}, format="json")
    assert response.json() == {"retried": 1}
    clip.refresh_from_db()
    assert (clip.status, clip.error) == (MediaStatus.PENDING, "")
    assert len(callbacks) == 1  # one transcode enqueued on commit


@pytest.mark.django_db
def test_a_retry_sent_as_a_form_is_refused_in_the_error_shape(api, adam, campaign):
    # The retry reads JSON only: a form is a 415 the schema documents, and retries nothing.
    clip = ClipFactory(status=MediaStatus.FAILED, video="", poster="", error="disk full")
    Task.objects.create(campaign=campaign, clip=clip)
    url = f"/api/v1/campaigns/{campaign.pk}/ingestion/retry/"
    response = api(adam).post(url, {"clip_ids": [clip.pk]}, format="multipart")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    clip.refresh_from_db()
    assert clip.status == MediaStatus.FAILED


@pytest.mark.worker
def test_a_worker_killed_mid_transcode_leaves_the_clip_finished_by_the_next_worker(
    real_broker, campaign, tmp_path, settings
):
    """Issue 16: the clip stayed "processing" until the 900 s requeue (its message returns
    only after the broker's 1800 s visibility timeout), with .part files left behind."""
    # A long input, so the kill lands while ffmpeg is still encoding.
    source = synthetic.make_test_video(
        tmp_path / "long.avi", seconds=50, size=(640, 480), codec="mpeg4"
    )
    first = WorkerProcess().start()  # the production visibility timeout: no quick redelivery
    call_command("import_clips", campaign=str(campaign.pk), manifest=_manifest_for(source))
    clip = Clip.objects.get()
    work = Path(settings.WORK_DIR) / f"clip-{clip.pk}"
    wait_for(lambda: list(work.glob("*.part")), timeout=30)  # ffmpeg is writing
    first.kill()
    killed_at = time.monotonic()
    clip.refresh_from_db()
    assert clip.status == MediaStatus.PROCESSING and not clip.video  # half-done, never ready

    # The next worker runs beat, as production does; its sweep sends the clip again once the
    # dead worker's lease has run out.
    second = WorkerProcess(args=("-B", "--schedule", str(tmp_path / "beat-schedule"))).start()
    try:
        wait_for(lambda: Clip.objects.get(pk=clip.pk).status == MediaStatus.READY, timeout=120)
    finally:
        second.stop()
    waited = time.monotonic() - killed_at
    clip.refresh_from_db()
    assert_browser_ready(clip)
    assert clip.frame_count == 1250
    # The 30 s lease, the next 15 s sweep, then the transcode itself (before: 15 minutes).
    assert waited < 90, waited
    # The next attempt emptied the dead worker's folder, and removed its own when done.
    assert not work.exists()
    assert not list(Path(settings.WORK_DIR).rglob("*.part"))


def _manifest_for(path: Path) -> Path:
    manifest = path.parent / "manifest.csv"
    manifest.write_text(f"path,scene\n{path.name},Terror\n")
    return manifest


@pytest.mark.django_db
def test_transient_errors_retry_with_backoff_then_fail_with_their_reason(monkeypatch):
    from celery.exceptions import Retry

    from clips import tasks

    clip = ClipFactory(status=MediaStatus.PENDING, video="", poster="", original="x.mp4")
    monkeypatch.setattr("clips.services._local_original", _fake_original)

    def full_disk(*args, **kwargs):
        raise media.TransientMediaError("could not write the clip: No space left on device")

    monkeypatch.setattr(media, "transcode", full_disk)
    countdowns = []

    def retry(exc=None, countdown=None, **kwargs):
        countdowns.append(countdown)
        return Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.process_clip, "retry", retry)
    for attempt in range(tasks.MAX_RETRIES):
        tasks.process_clip.push_request(retries=attempt, is_eager=False)
        try:
            with pytest.raises(Retry):
                tasks.process_clip.run(clip.pk)
        finally:
            tasks.process_clip.pop_request()
        # Pending again while it waits for its retry, saying why (issue 16: it sat in
        # "processing" with no error).
        waiting = Clip.objects.get(pk=clip.pk)
        assert (waiting.status, waiting.error) == (
            MediaStatus.PENDING,
            "could not write the clip: No space left on device",
        )
    assert countdowns == [5, 10, 20, 40, 80]  # exponential backoff
    tasks.process_clip.push_request(retries=tasks.MAX_RETRIES, is_eager=False)
    try:
        tasks.process_clip.run(clip.pk)  # the last attempt gives up without raising
    finally:
        tasks.process_clip.pop_request()
    clip.refresh_from_db()
    assert clip.status == MediaStatus.FAILED
    assert (
        clip.error == "gave up after 6 attempts: could not write the clip: No space left on device"
    )


@pytest.mark.django_db
def test_in_process_tasks_do_not_wait_on_a_transient_error(monkeypatch, campaign, tmp_path):
    """The embedded default runs tasks inside the request: no sleeping retries there."""
    from clips import tasks

    clip = ClipFactory(status=MediaStatus.PENDING, video="", poster="", original="x.mp4")
    monkeypatch.setattr("clips.services._local_original", _fake_original)
    monkeypatch.setattr(
        media, "transcode", lambda *a, **k: (_ for _ in ()).throw(media.TransientMediaError("busy"))
    )
    tasks.process_clip.delay(clip.pk)  # eager in the test settings
    clip.refresh_from_db()
    assert (clip.status, clip.error) == (MediaStatus.FAILED, "busy")


def _fake_original(clip, scratch=None):
    import contextlib

    return contextlib.nullcontext(Path("/nonexistent/original.mp4"))


@pytest.mark.django_db
def test_a_malformed_or_unknown_id_in_a_clip_url_answers_the_json_error(api, adam, campaign):
    paths = [
        "/api/v1/campaigns/abc/ingestion/",
        f"/api/v1/campaigns/{campaign.pk}/clips/abc/",
        f"/api/v1/campaigns/{campaign.pk}/clips/99999999/",
        f"/api/v1/campaigns/{campaign.pk}/clips/x1/origin/",
        f"/api/v1/campaigns/{campaign.pk}/source-videos/abc/",
        f"/api/v1/campaigns/{campaign.pk}/source-videos/99999999/",
        f"/api/v1/campaigns/{campaign.pk}/source-videos/-3/retry/",
    ]
    for path in paths:
        response = api(adam).post(path) if path.endswith("retry/") else api(adam).get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found", path


@pytest.mark.worker
def test_a_clip_whose_message_was_not_sent_goes_with_the_next_sweep(real_broker):
    """Issue 16: a clip uploaded just after a broker outage (its publish skipped while the
    breaker was open) waited for the 900 s stale cutoff."""
    from clips import services
    from labelstudio_ferv import queue

    clip = ClipFactory(status=MediaStatus.PENDING, video="", poster="")
    assert services.clips_requeue_stale() == 0  # just created: its message is on its way
    queue._open_breaker()  # a publish failed a moment ago: this one is skipped
    services.clip_enqueue_processing(clip_id=clip.pk)  # outside a transaction: at once
    queue.reset_breaker()
    assert services.clips_requeue_stale() == 1  # the next sweep (15 s) sends it
    assert services.clips_requeue_stale() == 0  # once
