"""From raw source videos to face clips ready to label: the candidate pipeline in the application.

The videos are made here with ffmpeg from the astronaut photo shipped by scikit-image (see
test_candidates.py): one face moving and growing, a hard cut to two faces, a hard cut to a coffee
cup with no face. Tasks run eagerly unless a test starts a real worker.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from annotations import intake
from annotations.models import Task
from clips import candidates, pipeline
from clips.models import Candidate, Clip, MediaStatus, SourceVideo, Stage
from tests.clips.test_candidates import (
    COFFEE,
    CUTS,
    H,
    W,
    noisy,
    three_shot_video,
    write_video,
)
from tests.conftest import wait_for
from tests.factories import CampaignFactory, ClipFactory, MembershipFactory, UserFactory

STAGES = ["scan", "shots", "tracks", "clips"]


@pytest.fixture(scope="module")
def scenes_video(tmp_path_factory):
    """640x360, 25 fps, 190 frames: one face | cut | two faces | cut | no face; and the truth."""
    return three_shot_video(tmp_path_factory.mktemp("pipeline") / "interview.mp4", seed=11)


@pytest.fixture(scope="module")
def faceless_avi(tmp_path_factory) -> Path:
    """A coffee cup, a hard cut to noise, no face anywhere; MPEG-4 in AVI (not for browsers)."""
    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("faceless")
    noise_bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    frames = [noisy(COFFEE, rng, 10) for _ in range(40)] + [noisy(noise_bg, rng) for _ in range(40)]
    mp4 = write_video(folder / "cup.mp4", frames)
    avi = folder / "cup.avi"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(mp4), "-c:v", "mpeg4",
         "-q:v", "3", str(avi)],
        check=True,
    )  # fmt: skip
    return avi


def upload(path: Path) -> SimpleUploadedFile:
    return SimpleUploadedFile(path.name, path.read_bytes())


def videos_url(campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/source-videos/"


def import_video(api, user, campaign, path: Path, capture, **fields):
    with capture(execute=True):
        response = api(user).post(
            videos_url(campaign),
            {"file": upload(path), "scene": "Interview", **fields},
            format="multipart",
        )
    return response


def ffprobe(path: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", path],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)["streams"][0]


@pytest.mark.django_db
def test_an_uploaded_video_becomes_face_clips_ready_to_label(
    api, adam, campaign, scenes_video, django_capture_on_commit_callbacks
):
    path, truth = scenes_video
    response = import_video(api, adam, campaign, path, django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.json()
    assert response.json()["created"] is True
    video = SourceVideo.objects.get()
    assert (video.status, video.stage, video.failed_stage, video.error) == ("ready", "done", "", "")
    assert (video.campaign_link.campaign, video.scene.folder, video.frame_count) == (
        campaign,
        "Interview",
        190,
    )

    detail = api(adam).get(f"{videos_url(campaign)}{video.pk}/").json()
    # The hard cuts, within 2 frames.
    starts = [s["start_frame"] for s in detail["shots"]]
    assert starts == [0, pytest.approx(CUTS[0], abs=2), pytest.approx(CUTS[1], abs=2)]
    # One track per face per shot: 1 face, then 2, then none.
    per_shot = Counter(t["shot_index"] for t in detail["tracks"])
    assert [per_shot[i] for i in range(3)] == [1, 2, 0]
    # Every stage is done, with its progress complete and its time measured.
    assert [(s["stage"], s["state"]) for s in detail["video"]["stages"]] == [
        (name, "done") for name in STAGES
    ]
    assert all(
        s["done"] == s["total"] and s["seconds"] is not None for s in detail["video"]["stages"]
    )
    assert detail["video"]["stages"][0]["total"] == 190
    assert detail["video"]["explanation"] == ""
    assert detail["params"]["min_frames"] == 8 and detail["params"]["max_frames"] == 47

    # Every candidate became a clip of the campaign, transcoded and ready to label.
    rows = list(Candidate.objects.filter(source_video=video).select_related("clip"))
    assert len(rows) == detail["video"]["clips_found"] == len(detail["candidates"]) >= 3
    clips = [row.clip for row in rows]
    assert Clip.objects.count() == len(clips) == len(set(clips))
    assert Task.objects.filter(campaign=campaign, clip__in=clips).count() == len(clips)
    for row in rows:
        clip = row.clip
        assert clip.status == MediaStatus.READY, clip.error
        assert clip.source_video == video and clip.scene == video.scene
        assert (clip.start_s, clip.end_s) == (row.start_s, row.end_s)
        frames = row.end_frame - row.start_frame
        assert 8 <= frames <= 47 and clip.frame_count == frames
        stream = ffprobe(clip.video.path)
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 224, 224)
        assert int(stream["nb_read_frames"]) == frames
        # The square crop holds the drawn face in every frame, and the boxes are recorded.
        crop = candidates.Box(*row.crop)
        assert crop.w == crop.h and 0 <= crop.x and crop.x2 <= W and crop.y2 <= H
        assert len(row.boxes) == frames
        for frame, box in zip(range(row.start_frame, row.end_frame), row.boxes, strict=True):
            face = max(truth[frame], key=candidates.Box(*box).iou)
            assert crop.contains(face), (row.pk, frame, crop, face)
    # Long tracks were split: shot 1 has two tracks of 80 frames, each cut in two pieces.
    assert Counter(row.track_id for row in rows).most_common(1)[0][1] >= 2

    # From any clip an admin finds its place in the source video.
    row = max(rows, key=lambda r: r.start_frame)
    origin = api(adam).get(f"/api/v1/campaigns/{campaign.pk}/clips/{row.clip_id}/origin/")
    assert origin.status_code == 200, origin.json()
    body = origin.json()
    assert body["source_video"]["id"] == video.pk
    # An H.264 MP4 plays as is; its URL is signed for the admin (tests/test_media.py).
    assert urlsplit(body["source_video"]["video_url"]).path == video.original.url
    assert (body["start_s"], body["end_s"]) == (row.start_s, row.end_s)
    assert body["start_frame"] == row.start_frame and body["boxes"] == row.boxes
    play = urlsplit(body["play_url"])
    assert (play.path, play.fragment) == (
        video.original.url,
        f"t={row.start_s:.3f},{row.end_s:.3f}",
    )
    listed = api(adam).get(videos_url(campaign)).json()
    assert [(v["id"], v["status"], v["clips_found"]) for v in listed] == [
        (video.pk, "ready", len(rows))
    ]


@pytest.mark.django_db
def test_a_video_without_faces_yields_no_clip_and_says_why(
    api, adam, campaign, faceless_avi, django_capture_on_commit_callbacks
):
    response = import_video(api, adam, campaign, faceless_avi, django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.json()
    video = SourceVideo.objects.get()
    detail = api(adam).get(f"{videos_url(campaign)}{video.pk}/").json()
    assert detail["video"]["status"] == "ready"
    assert detail["video"]["clips_found"] == 0 and detail["candidates"] == []
    assert detail["video"]["explanation"] == "no face found in 2 shots"
    assert not Clip.objects.exists() and not Task.objects.exists()
    # An AVI does not play in browsers: a preview copy does.
    video.refresh_from_db()
    assert video.preview and urlsplit(detail["video"]["video_url"]).path == video.preview.url
    assert ffprobe(video.preview.path)["codec_name"] == "h264"


@pytest.mark.django_db
def test_running_again_creates_no_duplicates_and_new_settings_start_late(
    api, adam, campaign, scenes_video, django_capture_on_commit_callbacks, monkeypatch
):
    path, _ = scenes_video
    import_video(api, adam, campaign, path, django_capture_on_commit_callbacks)
    video = SourceVideo.objects.get()
    before = set(Clip.objects.values_list("pk", flat=True))
    candidates_before = Candidate.objects.count()
    url = f"{videos_url(campaign)}{video.pk}/retry/"

    # The same file again: found by content, nothing new.
    response = import_video(api, adam, campaign, path, django_capture_on_commit_callbacks)
    assert response.status_code == 200 and response.json()["created"] is False
    # The whole pipeline again with the same settings: the same candidates and clips.
    with django_capture_on_commit_callbacks(execute=True):
        response = api(adam).post(url, {"stage": "scan"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["video"]["stage"] == "scan"  # sent; it runs after the commit
    video.refresh_from_db()
    assert (video.status, video.stage) == ("ready", "done")
    assert set(Clip.objects.values_list("pk", flat=True)) == before
    assert Candidate.objects.count() == candidates_before
    assert Task.objects.filter(campaign=campaign).count() == len(before)
    assert SourceVideo.objects.count() == 1

    # Shorter clips: only the clip stage runs again (no decode), old clips stay in the campaign.
    def no_decode(*args, **kwargs):
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(candidates, "scan_video", no_decode)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(adam).post(url, {"max_frames": 30}, format="json")
    assert response.status_code == 200, response.json()
    video.refresh_from_db()
    assert (video.status, video.params["max_frames"]) == ("ready", 30)
    assert video.clips_found == len(video.plan) > 0
    assert all(8 <= c["end_frame"] - c["start_frame"] <= 30 for c in video.plan)
    rows = {(r.start_frame, r.end_frame): r for r in Candidate.objects.filter(source_video=video)}
    planned = [rows[(c["start_frame"], c["end_frame"])] for c in video.plan]
    assert all(row.clip_id for row in planned)
    assert any(row.clip_id in before for row in planned)  # same span and crop: found again
    assert any(row.clip_id not in before for row in planned)
    assert before <= set(Clip.objects.values_list("pk", flat=True))  # earlier clips stay
    assert Task.objects.filter(campaign=campaign).count() == Clip.objects.count()

    # A finished video reruns only when told from where.
    response = api(adam).post(url, {}, format="json")
    assert response.status_code == 409
    assert "name the stage" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_a_failed_stage_says_which_and_why_and_retry_resumes_there(
    api, adam, campaign, scenes_video, django_capture_on_commit_callbacks, monkeypatch
):
    path, _ = scenes_video

    def broken_tracker(*args, **kwargs):
        raise candidates.CandidateError("the tracker lost its way")

    monkeypatch.setattr(candidates, "track_faces", broken_tracker)
    response = import_video(api, adam, campaign, path, django_capture_on_commit_callbacks)
    assert response.status_code == 201
    video = SourceVideo.objects.get()
    assert (video.status, video.stage, video.failed_stage) == ("failed", "tracks", "tracks")
    assert video.error == "the tracker lost its way"
    listed = api(adam).get(videos_url(campaign), {"status": "failed"}).json()
    assert [(v["id"], v["failed_stage"], v["error"]) for v in listed] == [
        (video.pk, "tracks", "the tracker lost its way")
    ]
    states = {s["stage"]: s["state"] for s in listed[0]["stages"]}
    assert states == {"scan": "done", "shots": "done", "tracks": "failed", "clips": "waiting"}
    assert not Clip.objects.exists()

    # The retry starts at the tracks: the stored scan is used, the video is not decoded again.
    monkeypatch.undo()

    def no_decode(*args, **kwargs):
        raise AssertionError("the video was decoded again")

    monkeypatch.setattr(candidates, "scan_video", no_decode)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(adam).post(f"{videos_url(campaign)}{video.pk}/retry/", {}, format="json")
    assert response.status_code == 200, response.json()
    video.refresh_from_db()
    assert (video.status, video.stage, video.failed_stage, video.error) == ("ready", "done", "", "")
    assert (
        video.clips_found and Clip.objects.filter(source_video=video).count() == video.clips_found
    )
    assert set(Clip.objects.values_list("status", flat=True)) == {MediaStatus.READY}


@pytest.mark.django_db
def test_a_stage_is_run_by_one_delivery_at_a_time(
    adam, campaign, scenes_video, django_capture_on_commit_callbacks, monkeypatch
):
    path, _ = scenes_video
    with django_capture_on_commit_callbacks(execute=False) as queued:
        video, created = intake.campaign_source_video_import(
            path=path, scene=campaign_scene(), campaign=campaign
        )
    assert created and len(queued) == 1  # the scan, sent after commit
    decodes = []
    real_scan = candidates.scan_video
    monkeypatch.setattr(
        candidates, "scan_video", lambda *a, **k: decodes.append(1) or real_scan(*a, **k)
    )
    # A worker holds the stage and beats: a second delivery backs off and decodes nothing.
    SourceVideo.objects.filter(pk=video.pk).update(
        status=MediaStatus.PROCESSING, heartbeat_at=timezone.now()
    )
    with pytest.raises(pipeline.StageBusy):
        pipeline.source_video_run_stage(video_id=video.pk, stage="scan")
    # A delivery for another stage than the due one is ignored.
    pipeline.source_video_run_stage(video_id=video.pk, stage="tracks")
    assert decodes == []
    # The holder died (no heartbeat for longer than the lease): the next delivery takes over.
    stale = timezone.now() - timedelta(seconds=pipeline.LEASE_S + 1)
    SourceVideo.objects.filter(pk=video.pk).update(heartbeat_at=stale)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        pipeline.source_video_run_stage(video_id=video.pk, stage="scan")
    assert decodes == [1] and len(queued) == 1  # the shots stage is sent next
    video.refresh_from_db()
    assert (video.stage, video.status, video.heartbeat_at) == ("shots", "pending", None)
    # A late duplicate of the scan finds it done.
    pipeline.source_video_run_stage(video_id=video.pk, stage="scan")
    assert decodes == [1]


def campaign_scene():
    from clips.models import Scene

    return Scene.objects.get(folder="Interview")


@pytest.mark.django_db
def test_bad_uploads_are_refused_with_reasons(
    api, adam, campaign, tmp_path, scenes_video, settings
):
    url = videos_url(campaign)
    notes = tmp_path / "notes.mp4"
    notes.write_text("not a video\n" * 50)
    response = api(adam).post(url, {"file": upload(notes), "scene": "Speech"}, format="multipart")
    assert response.status_code == 400 and "not a video" in response.json()["error"]["message"]
    path, _ = scenes_video
    response = api(adam).post(url, {"file": upload(path), "scene": "Mars"}, format="multipart")
    assert response.status_code == 400 and "scene" in response.json()["error"]["message"]
    response = api(adam).post(
        url,
        {"file": upload(path), "scene": "Speech", "min_frames": 50, "max_frames": 20},
        format="multipart",
    )
    assert response.status_code == 400 and "min_frames" in response.json()["error"]["message"]
    settings.SOURCE_MAX_UPLOAD_BYTES = 10_000
    response = api(adam).post(url, {"file": upload(path), "scene": "Speech"}, format="multipart")
    assert response.status_code == 413 and "size limit" in response.json()["error"]["message"]
    assert not SourceVideo.objects.exists()


@pytest.mark.django_db
def test_a_video_feeds_one_campaign(
    api, adam, campaign, faceless_avi, django_capture_on_commit_callbacks
):
    import_video(
        api, adam, campaign, faceless_avi, django_capture_on_commit_callbacks, title="Secret B"
    )
    other = CampaignFactory(name="Another campaign")
    eve = UserFactory(username="eve")
    MembershipFactory(campaign=other, user=eve, role="admin")
    response = import_video(
        api, eve, other, faceless_avi, django_capture_on_commit_callbacks, title="Mine"
    )
    assert response.status_code == 409
    # Issue 16: the answer named the video's id and title in the campaign that owns it.
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "Mine: this video is already in the library, imported by another "
            "campaign; a video feeds one campaign",
        }
    }
    assert api(eve).get(videos_url(other)).json() == []


@pytest.mark.django_db
def test_a_video_left_by_a_deleted_campaign_is_adopted_with_its_clips(
    api, adam, campaign, scenes_video, django_capture_on_commit_callbacks
):
    import_video(api, adam, campaign, scenes_video[0], django_capture_on_commit_callbacks)
    video = SourceVideo.objects.get()
    clips = set(Clip.objects.filter(source_video=video).values_list("pk", flat=True))
    assert clips and set(Task.objects.values_list("clip_id", flat=True)) == clips
    campaign.delete()  # its tasks and its link go; the media stays
    assert SourceVideo.objects.filter(pk=video.pk).exists() and not Task.objects.exists()
    other = CampaignFactory(name="Another campaign")
    MembershipFactory(campaign=other, user=adam, role="admin")
    response = import_video(api, adam, other, scenes_video[0], django_capture_on_commit_callbacks)
    assert (response.status_code, response.json()["created"]) == (200, False)
    assert response.json()["video"]["campaign_id"] == other.pk
    assert set(Task.objects.filter(campaign=other).values_list("clip_id", flat=True)) == clips
    assert api(adam).get(videos_url(other)).json()[0]["id"] == video.pk


@pytest.mark.django_db
def test_only_campaign_admins_see_source_videos_and_strangers_learn_nothing(
    api, alice, rita, adam, stranger, campaign, faceless_avi, django_capture_on_commit_callbacks
):
    import_video(api, adam, campaign, faceless_avi, django_capture_on_commit_callbacks)
    video = SourceVideo.objects.get()
    clip = ClipFactory(source_video=video, start_s=0.4, end_s=1.2)
    Task.objects.create(campaign=campaign, clip=clip)
    base = videos_url(campaign)
    gets = [base, f"{base}{video.pk}/", f"/api/v1/campaigns/{campaign.pk}/clips/{clip.pk}/origin/"]
    posts = [
        (base, {"file": upload(faceless_avi), "scene": "War"}),
        (f"{base}{video.pk}/retry/", {}),
    ]
    not_found = {"error": {"code": "not_found", "message": "Campaign not found."}}
    for url in gets:
        assert api(adam).get(url).status_code == 200, url
        assert api(alice).get(url).status_code == 403
        assert api(rita).get(url).status_code == 403
        assert api(stranger).get(url).json() == not_found
        assert api().get(url).status_code == 401
    for url, data in posts:
        assert api(alice).post(url, data, format="multipart").status_code == 403
        response = api(stranger).post(url, data, format="multipart")
        assert response.status_code == 404 and response.json() == not_found
        assert api().post(url, data, format="multipart").status_code == 401
    # A clip imported without a source, or a video of another campaign: not found.
    orphan = ClipFactory()
    Task.objects.create(campaign=campaign, clip=orphan)
    response = api(adam).get(f"/api/v1/campaigns/{campaign.pk}/clips/{orphan.pk}/origin/")
    assert response.status_code == 404 and "source video" in response.json()["error"]["message"]
    other = CampaignFactory()
    MembershipFactory(campaign=other, user=adam, role="admin")
    assert api(adam).get(f"{videos_url(other)}{video.pk}/").status_code == 404
    # Origin of a clip imported with a time span but no candidate: the span, no boxes.
    body = api(adam).get(gets[2]).json()
    assert (body["start_s"], body["end_s"], body["boxes"]) == (0.4, 1.2, None)
    assert body["play_url"].endswith("#t=0.400,1.200")


@pytest.mark.django_db
def test_import_command_takes_a_folder_by_scene_and_is_resumable(
    campaign, tmp_path, faceless_avi, scenes_video, capsys, django_capture_on_commit_callbacks
):
    (tmp_path / "War" / "day1").mkdir(parents=True)
    (tmp_path / "War" / "day1" / "cup.avi").write_bytes(faceless_avi.read_bytes())
    (tmp_path / "War" / "notes.txt").write_text("shot list")
    (tmp_path / "Mars").mkdir()
    (tmp_path / "Mars" / "x.avi").write_bytes(faceless_avi.read_bytes())
    (tmp_path / "loose.avi").write_bytes(faceless_avi.read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_videos", campaign=str(campaign.pk), folder=tmp_path, verbosity=2)
    out = capsys.readouterr()
    assert "1 imported, 0 already there, 3 rejected" in out.out
    assert "notes.txt: not a video" in out.err and "no scene named 'Mars'" in out.err
    assert "loose.avi: not inside a scene folder" in out.err
    video = SourceVideo.objects.get()
    assert (video.title, video.scene.folder, video.status) == ("War/day1/cup.avi", "War", "ready")
    assert video.explanation == "no face found in 2 shots"
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_videos", campaign=campaign.name, folder=tmp_path)
    assert "0 imported, 1 already there" in capsys.readouterr().out
    assert SourceVideo.objects.count() == 1


@pytest.mark.worker
def test_a_real_worker_runs_the_pipeline_stage_by_stage(celery_worker, scenes_video):
    path, _ = scenes_video
    campaign = CampaignFactory(name="worker campaign")
    admin_user = UserFactory(username="wadmin")
    MembershipFactory(campaign=campaign, user=admin_user, role="admin")
    video, created = intake.campaign_source_video_import(
        path=path, scene=campaign_scene(), campaign=campaign, params={"max_frames": 47}
    )
    assert created  # committed (no transaction here): the scan is on its way to the worker

    def finished():
        row = SourceVideo.objects.get(pk=video.pk)
        return row if row.status in (MediaStatus.READY, MediaStatus.FAILED) else None

    row = wait_for(finished, timeout=90)
    assert row.status == MediaStatus.READY, (row.failed_stage, row.error)
    assert row.clips_found and row.clips_found >= 3
    clips = Clip.objects.filter(source_video=row)
    assert clips.count() == row.clips_found
    wait_for(lambda: not clips.exclude(status=MediaStatus.READY).exists(), timeout=60)
    assert Task.objects.filter(campaign=campaign).count() == row.clips_found
    log = celery_worker.log.read_bytes()
    assert log.count(b"clips.run_source_stage") >= 4 and b"clips.process_clip" in log
    assert [row.progress[s]["done"] == row.progress[s]["total"] for s in STAGES] == [True] * 4
    assert row.stage == Stage.DONE


@pytest.mark.django_db
def test_the_admin_shows_stages_and_origins_and_retries_failed_videos(
    client, campaign, scenes_video, django_capture_on_commit_callbacks, monkeypatch
):
    path, _ = scenes_video
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    monkeypatch.setattr(
        candidates,
        "track_faces",
        lambda *a, **k: (_ for _ in ()).throw(candidates.CandidateError("tracker down")),
    )
    with django_capture_on_commit_callbacks(execute=True):
        video, _ = intake.campaign_source_video_import(
            path=path, scene=campaign_scene(), campaign=campaign
        )
    page = client.get("/admin/clips/sourcevideo/")
    assert page.status_code == 200 and b"tracker down" in page.content
    page = client.get(f"/admin/clips/sourcevideo/{video.pk}/change/")
    assert page.status_code == 200 and b"<td>tracks</td><td>failed</td>" in page.content
    # The files link with URLs signed for this admin (no media is public).
    assert re.search(rf'href="{video.original.url}\?e=\d+&amp;s=[^"]+"', page.content.decode())
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/clips/sourcevideo/",
            {"action": "retry_failed", "_selected_action": [video.pk]},
        )
    video.refresh_from_db()
    assert video.status == MediaStatus.READY and video.clips_found
    clip = Clip.objects.filter(source_video=video).first()
    page = client.get("/admin/clips/clip/")
    assert page.status_code == 200
    assert re.search(
        rf'href="{video.original.url}\?e=\d+&amp;s=[^"#]+#t={clip.start_s:.3f},{clip.end_s:.3f}"',
        page.content.decode(),
    )
    assert client.get(f"/admin/clips/clip/{clip.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_lost_messages_and_dead_workers_are_swept_up(
    campaign, scenes_video, django_capture_on_commit_callbacks
):
    from clips.tasks import requeue_stale_clips

    with django_capture_on_commit_callbacks(execute=False):
        video, _ = intake.campaign_source_video_import(
            path=scenes_video[0], scene=campaign_scene(), campaign=campaign
        )
    long_ago = timezone.now() - timedelta(hours=1)
    # Its scan message was lost while the broker was down.
    SourceVideo.objects.filter(pk=video.pk).update(updated_at=long_ago)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert requeue_stale_clips() == 1
    assert len(sent) == 1
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert requeue_stale_clips() == 0  # sent again once, not at every sweep
    assert sent == []
    # Its worker died in the middle of the tracks, and the task's retries ran out.
    SourceVideo.objects.filter(pk=video.pk).update(
        stage=Stage.TRACKS,
        status=MediaStatus.PROCESSING,
        heartbeat_at=long_ago,
        updated_at=long_ago,
    )
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert requeue_stale_clips() == 1
    assert len(sent) == 1


@pytest.mark.django_db
def test_a_full_disk_is_retried_with_backoff_then_reported(
    campaign, scenes_video, django_capture_on_commit_callbacks, monkeypatch
):
    import errno

    from celery.exceptions import Retry

    from clips import tasks

    with django_capture_on_commit_callbacks(execute=False):
        video, _ = intake.campaign_source_video_import(
            path=scenes_video[0], scene=campaign_scene(), campaign=campaign
        )

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/lsf-cut")

    monkeypatch.setattr(candidates, "scan_video", full_disk)
    countdowns = []
    monkeypatch.setattr(
        tasks.run_source_stage,
        "retry",
        lambda exc=None, countdown=None, **kw: countdowns.append(countdown) or Retry(exc=exc),
    )
    tasks.run_source_stage.push_request(retries=0, is_eager=False)
    try:
        with pytest.raises(Retry):
            tasks.run_source_stage.run(video.pk, "scan")
    finally:
        tasks.run_source_stage.pop_request()
    video.refresh_from_db()
    assert (video.status, video.stage, countdowns) == ("pending", "scan", [5])  # back in line
    tasks.run_source_stage.push_request(retries=tasks.MAX_RETRIES, is_eager=False)
    try:
        tasks.run_source_stage.run(video.pk, "scan")  # the last attempt gives up
    finally:
        tasks.run_source_stage.pop_request()
    video.refresh_from_db()
    assert (video.status, video.failed_stage) == ("failed", "scan")
    assert video.error == "gave up after 6 attempts: No space left on device (/tmp/lsf-cut)"
