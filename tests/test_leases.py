"""The one lease mechanism (labelstudio_ferv.leases) on a real row: claim, renew, take-over."""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from clips.models import MediaStatus, Scene, SourceVideo
from labelstudio_ferv import leases


def _claim(pk: int):
    return leases.claim(
        SourceVideo,
        pk=pk,
        match={"stage": "scan"},
        free=Q(status=MediaStatus.PENDING),
        held=Q(status=MediaStatus.PROCESSING),
        fields={"status": MediaStatus.PROCESSING},
        keep=("status",),
    )


@pytest.mark.django_db
def test_one_holder_at_a_time_and_a_dead_one_is_fenced_off():
    video = SourceVideo.objects.create(scene=Scene.objects.first(), original="x", checksum="x")
    first = _claim(video.pk)
    assert first is not None
    assert _claim(video.pk) is None  # fresh heartbeat: held
    first.beat(force=True, progress={"scan": {"done": 1, "total": 2}})
    # The first worker stops beating for longer than the lease: another delivery takes over.
    long_ago = timezone.now() - timedelta(seconds=leases.LEASE_S + 1)
    SourceVideo.objects.filter(pk=video.pk).update(heartbeat_at=long_ago)
    first.beat_at = long_ago  # as if its own last beat were that old
    second = _claim(video.pk)
    assert second is not None
    with pytest.raises(leases.LeaseLost):
        first.beat(force=True, progress={})
    assert not first.update(status=MediaStatus.FAILED)
    assert second.update(status=MediaStatus.READY, stage="done")
    video.refresh_from_db()
    assert (video.status, video.progress) == (MediaStatus.READY, {"scan": {"done": 1, "total": 2}})
