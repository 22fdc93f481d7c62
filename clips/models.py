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


class Stage(models.TextChoices):
    """The steps of the candidate pipeline, in order (see CANDIDATES.md, "In the application")."""

    SCAN = "scan", "Decode: cut scores and face detection"
    SHOTS = "shots", "Shot boundaries"
    TRACKS = "tracks", "Face tracking"
    CLIPS = "clips", "Candidate clips"
    DONE = "done", "Done"


# Stages that do work, in the order they run.
PIPELINE_STAGES = [Stage.SCAN, Stage.SHOTS, Stage.TRACKS, Stage.CLIPS]


class SourceVideo(models.Model):
    """A raw video that candidate clips are cut from, and where its pipeline stands.

    ``stage`` is the step to run next (``done`` at the end) and ``status`` says whether it waits
    for a worker (pending), runs (processing; ``updated_at`` is its heartbeat), failed (then
    ``failed_stage`` and ``error`` say where and why) or the pipeline is finished (ready). The
    outputs of the finished stages are kept (``scan``, ``shots``, ``tracks``, ``plan``), so a
    retry resumes at the failed stage without decoding the video again.
    """

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
    stage = models.CharField(max_length=8, choices=Stage.choices, default=Stage.SCAN)
    failed_stage = models.CharField(max_length=8, choices=Stage.choices, blank=True)
    # Set when a worker claims the stage and renewed while it works: a processing stage whose
    # heartbeat is older than leases.LEASE_S belongs to a dead worker and may be claimed again.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The settings of the run (FERV39k defaults, see pipeline.DEFAULT_PARAMS); the same video
    # with the same params gives the same candidates.
    params = models.JSONField(default=dict, blank=True)
    # {stage: {"done": n, "total": n, "seconds": s}}: written by the worker running the stage.
    progress = models.JSONField(default=dict, blank=True)
    # Stage outputs, as the candidates module's to_dict() gives them. Large: list views defer them.
    scan = models.JSONField(null=True, blank=True)
    shots = models.JSONField(null=True, blank=True)
    tracks = models.JSONField(null=True, blank=True)
    plan = models.JSONField(null=True, blank=True)
    shot_count = models.PositiveIntegerField(null=True, blank=True)
    track_count = models.PositiveIntegerField(null=True, blank=True)
    clips_found = models.PositiveIntegerField(null=True, blank=True)
    explanation = models.CharField(
        max_length=500, blank=True, help_text="Why the video gave no candidate clip, when so."
    )
    # A browser-playable copy, made only when the original is not an H.264 MP4.
    preview = models.FileField(upload_to="sources/previews/", max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=MediaStatus.READY) | Q(stage=Stage.DONE),
                name="source_ready_is_done",
            ),
            models.CheckConstraint(
                condition=~Q(status=MediaStatus.FAILED) | ~Q(failed_stage=""),
                name="source_failure_names_stage",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"source video {self.pk}"

    def stage_states(self) -> list[dict]:
        """Return every pipeline stage with its state (done, queued, running, failed, waiting)
        and its progress, in order."""
        states = []
        current = PIPELINE_STAGES.index(self.stage) if self.stage != Stage.DONE else None
        for index, stage in enumerate(PIPELINE_STAGES):
            if current is None or index < current:
                state = "done"
            elif index > current:
                state = "waiting"
            else:
                state = {
                    MediaStatus.PENDING: "queued",
                    MediaStatus.PROCESSING: "running",
                    MediaStatus.FAILED: "failed",
                }.get(self.status, "queued")
            entry = (self.progress or {}).get(stage, {})
            states.append(
                {
                    "stage": stage.value,
                    "state": state,
                    "done": entry.get("done"),
                    "total": entry.get("total"),
                    "seconds": entry.get("seconds"),
                }
            )
        return states

    @property
    def playable_file(self):
        """The file a browser can play: the preview copy when one was needed and made."""
        return self.preview if self.preview else self.original


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


class Candidate(models.Model):
    """One planned piece of a face track in a source video, and the clip cut from it.

    A candidate is identified by what its clip shows: the frame span and the square crop. A
    rerun of the pipeline finds the candidates it planned before and cuts nothing twice.
    ``boxes`` holds the face box ``[x, y, w, h]`` (source pixels) of every frame of the span.
    """

    source_video = models.ForeignKey(
        SourceVideo, on_delete=models.CASCADE, related_name="candidates"
    )
    clip = models.ForeignKey(
        Clip, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    track_id = models.PositiveIntegerField()
    piece = models.PositiveSmallIntegerField()
    shot_index = models.PositiveIntegerField()
    start_frame = models.PositiveIntegerField()
    end_frame = models.PositiveIntegerField()
    start_s = models.FloatField()
    end_s = models.FloatField()
    crop_x = models.PositiveIntegerField()
    crop_y = models.PositiveIntegerField()
    crop_size = models.PositiveIntegerField()
    boxes = models.JSONField(default=list)
    error = models.TextField(blank=True, help_text="Why the clip could not be cut, when so.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Two runs (or two deliveries of one stage) never make two candidates of one clip.
            models.UniqueConstraint(
                fields=[
                    "source_video",
                    "start_frame",
                    "end_frame",
                    "crop_x",
                    "crop_y",
                    "crop_size",
                ],
                name="candidate_unique_span_crop",
            ),
            models.CheckConstraint(
                condition=Q(end_frame__gt=models.F("start_frame")), name="candidate_span_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_video_id}: track {self.track_id} piece {self.piece}"

    @property
    def crop(self) -> list[int]:
        return [self.crop_x, self.crop_y, self.crop_size, self.crop_size]
