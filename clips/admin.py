from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from labelstudio_ferv.media_urls import media_url

from .models import Candidate, Clip, Scenario, Scene, SourceVideo
from .pipeline import source_videos_retry_failed
from .services import clips_retry_failed


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ["position", "code", "name"]


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "folder", "scenario"]
    list_filter = ["scenario"]


def _per_request(request, key: str, column):
    """Return one column callable per request and name: Django's admin asks for the read-only
    fields several times while it builds a form and matches them by identity."""
    columns = request.__dict__.setdefault("_signed_media_columns", {})
    return columns.setdefault(key, column)


class CandidateInline(admin.TabularInline):
    model = Candidate
    fields = ["clip", "track_id", "piece", "shot_index", "start_s", "end_s", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SourceVideo)
class SourceVideoAdmin(admin.ModelAdmin):
    actions = ["retry_failed"]
    list_display = [
        "id", "title", "scene", "stage", "status", "progress_summary",
        "clips_found", "short_error", "updated_at",
    ]  # fmt: skip
    list_filter = ["status", "stage", "failed_stage", "scene__scenario", "scene"]
    search_fields = ["title", "checksum"]
    list_select_related = ["scene"]
    # The stage outputs are large JSON documents: the API shows them in readable form. The files
    # show as signed links (get_readonly_fields).
    exclude = ["scan", "shots", "tracks", "plan", "progress", "original", "preview"]
    readonly_fields = [
        "checksum", "original_file", "preview_file", "status", "stage", "failed_stage", "error",
        "explanation", "stage_table", "params", "shot_count", "track_count", "clips_found",
        "duration_s", "fps", "frame_count", "width", "height", "heartbeat_at", "created_by",
        "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [CandidateInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("scan", "shots", "tracks", "plan")

    def get_readonly_fields(self, request, obj=None):
        """The files as links signed for the admin looking at the page (no media is public)."""
        return [
            self._file_link(f.removesuffix("_file"), request) if f.endswith("_file") else f
            for f in self.readonly_fields
        ]

    @staticmethod
    def _file_link(field: str, request):
        @admin.display(description=field)
        def link(video: SourceVideo) -> str:
            stored = getattr(video, field)
            if not stored:
                return "-"
            return format_html('<a href="{}">{}</a>', media_url(stored, user=request.user), stored)

        return _per_request(request, field, link)

    @admin.display(description="original")
    def original_file(self, video: SourceVideo) -> str:
        """Stands in for the per-request link in Django's checks."""
        return video.original.name

    @admin.display(description="preview")
    def preview_file(self, video: SourceVideo) -> str:
        """Stands in for the per-request link in Django's checks."""
        return video.preview.name

    @admin.display(description="progress")
    def progress_summary(self, video: SourceVideo) -> str:
        parts = []
        for entry in video.stage_states():
            if entry["state"] in ("running", "failed", "queued") and entry["total"]:
                parts.append(f"{entry['stage']} {entry['done']}/{entry['total']}")
            elif entry["state"] in ("running", "failed", "queued"):
                parts.append(f"{entry['stage']} {entry['state']}")
        return ", ".join(parts) or ("done" if video.stage == "done" else "")

    @admin.display(description="error")
    def short_error(self, video: SourceVideo) -> str:
        text = video.error or video.explanation
        return text if len(text) <= 80 else text[:77] + "..."

    @admin.display(description="stages")
    def stage_table(self, video: SourceVideo) -> str:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e["stage"],
                    e["state"],
                    "" if e["total"] is None else f"{e['done']}/{e['total']}",
                    "" if e["seconds"] is None else f"{e['seconds']:.1f} s",
                )
                for e in video.stage_states()
            ),
        )
        return format_html("<table><tr><th>stage</th><th>state</th><th>progress</th>"
                           "<th>time</th></tr>{}</table>", rows)  # fmt: skip

    @admin.action(description="Retry the selected failed videos from their failed stage")
    def retry_failed(self, request, queryset):
        count = source_videos_retry_failed(videos=queryset)
        self.message_user(request, f"{count} failed video(s) sent back to their failed stage.")


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    actions = ["retry_failed"]
    list_display = [
        "id", "name", "scene", "status", "error", "duration_s", "frame_count", "origin",
        "created_at",
    ]  # fmt: skip
    list_filter = ["status", "scene__scenario", "scene"]
    search_fields = ["name", "checksum"]
    readonly_fields = ["checksum", "error", "origin", "created_at", "updated_at"]
    raw_id_fields = ["source_video"]
    list_select_related = ["scene", "source_video"]

    def get_queryset(self, request):
        heavy = ["source_video__scan", "source_video__shots", "source_video__tracks"]
        return super().get_queryset(request).defer(*heavy, "source_video__plan")

    def get_list_display(self, request):
        return [self._origin_column(request) if f == "origin" else f for f in self.list_display]

    def get_readonly_fields(self, request, obj=None):
        return [self._origin_column(request) if f == "origin" else f for f in self.readonly_fields]

    def _origin_column(self, request):
        """The origin column with a play link signed for the admin looking at the page."""

        @admin.display(description="origin")
        def origin(clip: Clip) -> str:
            return self._origin_html(clip, user=request.user)

        return _per_request(request, "origin", origin)

    @admin.display(description="origin")
    def origin(self, clip: Clip) -> str:
        """Stands in for the per-request column in Django's checks; links no media."""
        return self._origin_html(clip, user=None)

    def _origin_html(self, clip: Clip, *, user) -> str:
        """Link to the source video, and play the clip's span of it (a media fragment URL)."""
        video = clip.source_video
        if video is None:
            return "-"
        page = reverse("admin:clips_sourcevideo_change", args=[video.pk])
        if clip.start_s is None or clip.end_s is None or user is None:
            return format_html('<a href="{}">{}</a>', page, video)
        url = media_url(video.playable_file, user=user)
        play = f"{url}#t={clip.start_s:.3f},{clip.end_s:.3f}"
        span = f"{clip.start_s:.2f}-{clip.end_s:.2f} s"
        return format_html(
            '<a href="{}">{}</a> {} (<a href="{}" target="_blank">play</a>)',
            page,
            video,
            span,
            play,
        )

    @admin.action(description="Retry the selected failed clips")
    def retry_failed(self, request, queryset):
        count = clips_retry_failed(clips=queryset)
        self.message_user(request, f"{count} failed clip(s) sent back for processing.")
