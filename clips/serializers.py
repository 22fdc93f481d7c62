"""Shapes of clip API input and output."""

from rest_framework import serializers

from .models import Clip, MediaStatus


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
        return clip.video.url if clip.status == MediaStatus.READY else None

    def get_poster_url(self, clip: Clip) -> str | None:
        return clip.poster.url if clip.status == MediaStatus.READY else None


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
