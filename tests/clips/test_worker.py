"""A task enqueued after commit runs on a real Celery worker against Redis and PostgreSQL."""

import pytest
from django.db import transaction

from clips import synthetic
from clips.models import Clip, MediaStatus, Scene
from clips.services import clip_create
from tests.conftest import wait_for


@pytest.mark.worker
def test_a_clip_created_in_a_transaction_is_transcoded_by_a_real_worker(celery_worker, tmp_path):
    source = tmp_path / "input.mp4"
    synthetic.make_test_video(source, seconds=1.0)
    with transaction.atomic():
        clip, created = clip_create(path=source, scene=Scene.objects.get(folder="Speech"))
        # Enqueued on commit: until the transaction ends the worker cannot see (or get) it.
        assert Clip.objects.get(pk=clip.pk).status == MediaStatus.PENDING
    assert created

    def ready():
        row = Clip.objects.get(pk=clip.pk)
        return row if row.status in (MediaStatus.READY, MediaStatus.FAILED) else None

    row = wait_for(ready, timeout=60)
    assert row.status == MediaStatus.READY, row.error
    assert row.video.name == f"clips/{clip.pk}.mp4"
    assert row.video.storage.exists(row.video.name) and row.poster.storage.exists(row.poster.name)
    assert row.frame_count == 25 and row.width == 224
    assert b"ready." in celery_worker.log.read_bytes()
    assert b"clips.process_clip" in celery_worker.log.read_bytes()


@pytest.mark.worker
def test_nothing_is_enqueued_when_the_transaction_rolls_back(celery_worker, tmp_path):
    source = tmp_path / "input.mp4"
    synthetic.make_test_video(source, seconds=0.5, pattern="smptebars")
    with pytest.raises(RuntimeError), transaction.atomic():
        clip_create(path=source, scene=Scene.objects.get(folder="War"))
        raise RuntimeError("abandon the import")
    assert not Clip.objects.exists()
