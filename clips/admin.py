from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

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
    # The stage outputs are large JSON documents: the API shows them in readable form.
    exclude = ["scan", "shots", "tracks", "plan", "progress"]
    readonly_fields = [
        "checksum", "original", "preview", "status", "stage", "failed_stage", "error",
        "explanation", "stage_table", "params", "shot_count", "track_count", "clips_found",
        "duration_s", "fps", "frame_count", "width", "height", "heartbeat_at", "created_by",
        "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [CandidateInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("scan", "shots", "tracks", "plan")

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

    @admin.display(description="origin")
    def origin(self, clip: Clip) -> str:
        """Link to the source video, and play the clip's span of it (a media fragment URL)."""
        video = clip.source_video
        if video is None:
            return "-"
        page = reverse("admin:clips_sourcevideo_change", args=[video.pk])
        if clip.start_s is None or clip.end_s is None:
            return format_html('<a href="{}">{}</a>', page, video)
        play = f"{video.playable_file.url}#t={clip.start_s:.3f},{clip.end_s:.3f}"
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
