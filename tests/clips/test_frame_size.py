"""Frames over CLIP_MAX_SOURCE_PIXELS are refused before decoding (issue 16 item 9).

Before: a 756 KB file of 16000x16000 frames took 2.2 GB and 100 s of a worker, and a folder of
such PNG frames hit the time limit and went round the retry chain. The limit is lowered here so
small inputs stand for huge ones.
"""

from __future__ import annotations

import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from clips import media, synthetic, tasks
from clips.models import Clip, MediaStatus


def _run_task_as_a_worker(clip_id: int) -> None:
    """Run the task as a worker would (not eager): a retry would raise celery's Retry."""
    tasks.process_clip.push_request(retries=0, is_eager=False)
    try:
        tasks.process_clip.run(clip_id)
    finally:
        tasks.process_clip.pop_request()


@pytest.mark.django_db
def test_a_video_with_oversized_frames_fails_at_once_with_a_clear_error(
    api, adam, campaign, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.CLIP_MAX_SOURCE_PIXELS = 320 * 240
    path = synthetic.make_test_video(tmp_path / "big.mp4", seconds=2, size=(640, 480))
    upload = SimpleUploadedFile("big.mp4", path.read_bytes(), content_type="video/mp4")
    with django_capture_on_commit_callbacks(execute=False):
        response = api(adam).post(
            f"/api/v1/campaigns/{campaign.pk}/clips/",
            {"files": [upload], "scene": "Terror"},
            format="multipart",
        )
    assert response.status_code == 201, response.content
    clip = Clip.objects.get()
    _run_task_as_a_worker(clip.pk)  # no Retry raised: not worth retrying
    clip.refresh_from_db()
    assert clip.status == MediaStatus.FAILED
    assert clip.error == (
        "the frames are 640x480 pixels (0.3 megapixels), over the limit of 0.1 megapixels per frame"
    )
    assert not clip.video


@pytest.mark.django_db
def test_a_frame_folder_with_an_oversized_frame_fails_without_decoding_it(
    campaign, tmp_path, settings, django_capture_on_commit_callbacks
):
    settings.CLIP_MAX_SOURCE_PIXELS = 320 * 240
    folder = tmp_path / "Action" / "Sad" / "0001"
    synthetic.make_test_frames(folder, n=3, size=(224, 224))
    # A later frame is huge though the first is small: the decoder itself holds the limit.
    big = sorted(folder.iterdir())[-1]
    big.unlink()
    subprocess.run(
        [media.ffmpeg_binary(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=s=2000x2000"]
        + ["-frames:v", "1", str(big.with_suffix(".jpg"))],
        check=True,
    )
    with django_capture_on_commit_callbacks(execute=False):
        call_command("import_clips", campaign=str(campaign.pk), folder=tmp_path)
    clip = Clip.objects.get()
    _run_task_as_a_worker(clip.pk)
    clip.refresh_from_db()
    assert clip.status == MediaStatus.FAILED
    assert clip.error == "a frame is larger than the limit of 0.1 megapixels per frame"


def test_the_size_check_reads_only_headers(tmp_path):
    """A 16000x16000 PNG frame is refused from its header: no decoding, no memory."""
    folder = tmp_path / "frames"
    folder.mkdir()
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (16000).to_bytes(4, "big") * 2
    (folder / "0001.png").write_bytes(header + b"\x08\x02\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(media.FramesTooLargeError, match="16000x16000"):
        media.transcode(folder, tmp_path / "out.mp4", tmp_path / "out.jpg", max_pixels=4096 * 4096)
