"""Shapes of the campaign intake API (clip uploads, ingestion, source videos) input and output."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clips.models import Clip, MediaStatus, SourceVideo, Stage
from labelstudio_ferv.media_urls import media_url, request_user

# The statuses of a source video, as the pipeline uses them.
PIPELINE_STATUS = [
    (MediaStatus.PENDING.value, "Its next stage waits for a worker"),
    (MediaStatus.PROCESSING.value, "A stage runs"),
    (MediaStatus.READY.value, "Every stage is done"),
    (MediaStatus.FAILED.value, "A stage failed (see failed_stage and error)"),
]


class UploadInput(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), allow_empty=False,
        help_text="One or more clip files (any common video format).",
    )  # fmt: skip
    scene = serializers.ListField(
        child=serializers.CharField(), allow_empty=False,
        help_text="Scene (id, folder name or display name): one for all files, or one per file "
        "in the same order.",
    )  # fmt: skip


class IngestResultOutput(serializers.Serializer):
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=["created", "existing", "rejected"])
    clip_id = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)


class UploadOutput(serializers.Serializer):
    created = serializers.IntegerField()
    existing = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = IngestResultOutput(many=True)


class ClipOutput(serializers.ModelSerializer):
    scene = serializers.CharField(source="scene.folder")
    video_url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()

    class Meta:
        model = Clip
        fields = [
            "id", "name", "scene", "status", "error", "duration_s", "fps", "frame_count",
            "width", "height", "video_url", "poster_url", "created_at", "updated_at",
        ]  # fmt: skip

    def get_video_url(self, clip: Clip) -> str | None:
        if clip.status != MediaStatus.READY:
            return None
        return media_url(clip.video, user=request_user(self.context))

    def get_poster_url(self, clip: Clip) -> str | None:
        if clip.status != MediaStatus.READY:
            return None
        return media_url(clip.poster, user=request_user(self.context))


class FailureOutput(serializers.Serializer):
    clip_id = serializers.IntegerField()
    name = serializers.CharField()
    error = serializers.CharField()
    updated_at = serializers.DateTimeField()


class IngestionOutput(serializers.Serializer):
    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    processing = serializers.IntegerField()
    ready = serializers.IntegerField()
    failed = serializers.IntegerField()
    failures = FailureOutput(many=True)


class RetryInput(serializers.Serializer):
    clip_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**62), required=False,
        help_text="Failed clips to retry; all failed clips of the campaign when left out.",
    )  # fmt: skip


class RetryOutput(serializers.Serializer):
    retried = serializers.IntegerField()


# ------------------------------------------------------------------------- source videos


class PipelineParamsInput(serializers.Serializer):
    min_frames = serializers.IntegerField(
        required=False, min_value=1, max_value=1000,
        help_text="Shortest candidate clip in frames (FERV39k: 8); shorter tracks are dropped.",
    )  # fmt: skip
    max_frames = serializers.IntegerField(
        required=False, min_value=1, max_value=1000,
        help_text="Longest candidate clip in frames (FERV39k: 47); longer tracks are split.",
    )  # fmt: skip
    margin = serializers.FloatField(
        required=False, min_value=0, max_value=2,
        help_text="Space around the face in the square crop, as a share of the face size.",
    )  # fmt: skip
    sample_every = serializers.IntegerField(
        required=False, min_value=1, max_value=25,
        help_text="Run the face detector on every n-th frame (3 by default).",
    )  # fmt: skip


class SourceVideoUploadInput(PipelineParamsInput):
    file = serializers.FileField(help_text="The raw video (any common format).")
    scene = serializers.CharField(help_text="Scene (id, folder name or display name).")
    title = serializers.CharField(
        required=False, allow_blank=True, max_length=255,
        help_text="A name for the video; its file name by default.",
    )  # fmt: skip


class SourceVideoRetryInput(PipelineParamsInput):
    stage = serializers.ChoiceField(
        choices=Stage.choices, required=False,
        help_text="Stage to run again from: by default the failed one. A finished video needs "
        "a stage, or new settings (which rerun from the first stage they change).",
    )  # fmt: skip


class StageStateOutput(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    state = serializers.ChoiceField(choices=["done", "queued", "running", "failed", "waiting"])
    done = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)


class SourceVideoOutput(serializers.ModelSerializer):
    scene = serializers.CharField(source="scene.folder")
    # Annotated by the intake reads (the link lives in annotations.CampaignSourceVideo).
    campaign_id = serializers.IntegerField(allow_null=True, read_only=True)
    status = serializers.ChoiceField(choices=PIPELINE_STATUS)
    failed_stage = serializers.CharField(help_text="The stage that failed, else empty.")
    stages = serializers.SerializerMethodField()
    video_url = serializers.SerializerMethodField()

    class Meta:
        model = SourceVideo
        fields = [
            "id", "title", "scene", "campaign_id", "status", "stage", "failed_stage", "error",
            "explanation", "stages", "duration_s", "fps", "frame_count", "width", "height",
            "shot_count", "track_count", "clips_found", "video_url", "created_at", "updated_at",
        ]  # fmt: skip

    @extend_schema_field(StageStateOutput(many=True))
    def get_stages(self, video: SourceVideo) -> list[dict]:
        return video.stage_states()

    def get_video_url(self, video: SourceVideo) -> str:
        return media_url(video.playable_file, user=request_user(self.context))


class ShotOutput(serializers.Serializer):
    index = serializers.IntegerField()
    start_frame = serializers.IntegerField()
    end_frame = serializers.IntegerField()
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()


class TrackOutput(serializers.Serializer):
    track_id = serializers.IntegerField()
    shot_index = serializers.IntegerField()
    start_frame = serializers.IntegerField()
    end_frame = serializers.IntegerField()
    hits = serializers.IntegerField(help_text="Sampled frames where the detector saw the face.")


class CandidateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    clip_id = serializers.IntegerField(allow_null=True)
    clip_status = serializers.CharField(
        allow_null=True, help_text="The clip's processing status, as in the clip's own detail."
    )
    track_id = serializers.IntegerField()
    piece = serializers.IntegerField()
    shot_index = serializers.IntegerField()
    start_frame = serializers.IntegerField()
    end_frame = serializers.IntegerField()
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()
    crop = serializers.ListField(child=serializers.IntegerField(), help_text="[x, y, w, h]")
    error = serializers.CharField(allow_blank=True)


class SourceVideoDetailOutput(serializers.Serializer):
    video = SourceVideoOutput()
    params = serializers.DictField(source="video.params")
    shots = ShotOutput(many=True)
    tracks = TrackOutput(many=True)
    candidates = CandidateOutput(many=True)


class SourceVideoUploadOutput(SourceVideoDetailOutput):
    created = serializers.BooleanField()


class SourceRefOutput(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    scene = serializers.CharField(source="scene.folder")
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    fps = serializers.FloatField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    video_url = serializers.SerializerMethodField(help_text="A browser-playable file.")
    original_url = serializers.SerializerMethodField()

    def get_video_url(self, video: SourceVideo) -> str:
        return media_url(video.playable_file, user=request_user(self.context))

    def get_original_url(self, video: SourceVideo) -> str:
        return media_url(video.original, user=request_user(self.context))


class ClipOriginOutput(serializers.Serializer):
    clip_id = serializers.IntegerField(source="clip.pk")
    source_video = SourceRefOutput(source="video")
    start_s = serializers.FloatField(source="clip.start_s", allow_null=True)
    end_s = serializers.FloatField(source="clip.end_s", allow_null=True)
    play_url = serializers.SerializerMethodField(
        help_text="The source video with a media fragment (#t=start,end) that plays the span."
    )
    start_frame = serializers.IntegerField(source="candidate.start_frame", allow_null=True)
    end_frame = serializers.IntegerField(source="candidate.end_frame", allow_null=True)
    shot_index = serializers.IntegerField(source="candidate.shot_index", allow_null=True)
    track_id = serializers.IntegerField(source="candidate.track_id", allow_null=True)
    piece = serializers.IntegerField(source="candidate.piece", allow_null=True)
    crop = serializers.ListField(
        source="candidate.crop", child=serializers.IntegerField(), allow_null=True,
        help_text="The square the clip was cut from, [x, y, w, h] in source pixels.",
    )  # fmt: skip
    boxes = serializers.ListField(
        source="candidate.boxes", allow_null=True,
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="The face box [x, y, w, h] of every frame from start_frame, source pixels.",
    )  # fmt: skip

    def get_play_url(self, origin: dict) -> str:
        clip = origin["clip"]
        url = media_url(origin["video"].playable_file, user=request_user(self.context))
        if clip.start_s is None or clip.end_s is None:
            return url
        return f"{url}#t={clip.start_s:.3f},{clip.end_s:.3f}"
