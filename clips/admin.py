from django.contrib import admin

from .models import Clip, Scenario, Scene, SourceVideo
from .services import clips_retry_failed


@admin.register(Scenario)
class ScenarioAdmin(admin.ModelAdmin):
    list_display = ["position", "code", "name"]


@admin.register(Scene)
class SceneAdmin(admin.ModelAdmin):
    list_display = ["position", "name", "folder", "scenario"]
    list_filter = ["scenario"]


@admin.register(SourceVideo)
class SourceVideoAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "scene", "status", "duration_s", "created_at"]
    list_filter = ["status", "scene__scenario", "scene"]
    search_fields = ["title", "checksum"]
    readonly_fields = ["checksum", "created_at", "updated_at"]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    actions = ["retry_failed"]
    list_display = [
        "id", "name", "scene", "status", "error", "duration_s", "frame_count", "created_at"
    ]  # fmt: skip
    list_filter = ["status", "scene__scenario", "scene"]
    search_fields = ["name", "checksum"]
    readonly_fields = ["checksum", "error", "created_at", "updated_at"]
    raw_id_fields = ["source_video"]
    list_select_related = ["scene"]

    @admin.action(description="Retry the selected failed clips")
    def retry_failed(self, request, queryset):
        count = clips_retry_failed(clips=queryset)
        self.message_user(request, f"{count} failed clip(s) sent back for processing.")
