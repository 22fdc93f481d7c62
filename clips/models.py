"""Scenes, source videos and candidate clips: the media side of the application."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from labelstudio_ferv.expressions import Label


class Scenario(models.Model):
    """One of the 4 FERV39k scenarios (Daily Life, ...), seeded by a data migration."""

    code = models.CharField(max_length=8, unique=True)
    name = models.CharField(max_length=64, unique=True)
    position = models.PositiveSmallIntegerField(unique=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class Scene(models.Model):
    """One of the 22 scenes; ``folder`` is its folder name in the release ("DailyLife")."""

    scenario = models.ForeignKey(Scenario, on_delete=models.PROTECT, related_name="scenes")
    name = models.CharField(max_length=64, unique=True)
    folder = models.CharField(max_length=64, unique=True)
    position = models.PositiveSmallIntegerField(unique=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.name


class MediaStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SourceVideo(models.Model):
    """A raw video that candidate clips are cut from."""

    scene = models.ForeignKey(Scene, on_delete=models.PROTECT, related_name="source_videos")
    title = models.CharField(max_length=255, blank=True)
    original = models.FileField(upload_to="sources/%Y/%m/", max_length=500)
    checksum = models.CharField(max_length=64, unique=True)
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=MediaStatus.choices, default=MediaStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title or f"source video {self.pk}"


class Clip(models.Model):
    """A short candidate face clip, as uploaded (``original``) and as browsers play it (``video``).

    The checksum is of the original content, so importing the same file twice finds this row.
    """

    scene = models.ForeignKey(Scene, on_delete=models.PROTECT, related_name="clips")
    source_video = models.ForeignKey(
        SourceVideo, null=True, blank=True, on_delete=models.SET_NULL, related_name="clips"
    )
    start_s = models.FloatField(null=True, blank=True)
    end_s = models.FloatField(null=True, blank=True)
    name = models.CharField(max_length=255, blank=True, help_text="Name or path it arrived under.")
    original = models.FileField(upload_to="originals/%Y/%m/", max_length=500, blank=True)
    video = models.FileField(upload_to="clips/", max_length=500, blank=True)
    poster = models.FileField(upload_to="posters/", max_length=500, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    checksum = models.CharField(max_length=64, unique=True)
    status = models.CharField(
        max_length=16, choices=MediaStatus.choices, default=MediaStatus.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    # The expression named by a release-style path (<Scene>/<Emotion>/<id>); never shown to
    # annotators, stored only when an import asks for it.
    reference_label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # A clip is never ready without the files a browser needs.
            models.CheckConstraint(
                condition=~Q(status=MediaStatus.READY) | (~Q(video="") & ~Q(poster="")),
                name="clip_ready_has_files",
            ),
            models.CheckConstraint(
                condition=Q(end_s__isnull=True)
                | Q(start_s__isnull=True)
                | Q(end_s__gt=models.F("start_s")),
                name="clip_span_ordered",
            ),
            models.CheckConstraint(
                condition=Q(reference_label__isnull=True) | Q(reference_label__lte=6),
                name="clip_reference_is_label",
            ),
        ]

    def __str__(self) -> str:
        return self.name or f"clip {self.pk}"
