from django.contrib import admin

from .models import (
    Assignment,
    AuditEntry,
    Campaign,
    CampaignStatistics,
    GoldBatch,
    Membership,
    Role,
    Task,
    Vote,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "votes_per_clip", "max_votes", "gold_share", "aggregation"]
    inlines = [MembershipInline]
    # Checked and applied by the services (clips of the campaign; priorities copied into its
    # tasks): edited over the API or the intake and guidelines pages, not here.
    readonly_fields = ["guideline_examples", "scene_priority"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            # As over the API: the creator administers the campaign (and sees it on /).
            from .services import membership_set

            obj.created_by = obj.created_by or request.user
            Campaign.objects.filter(pk=obj.pk).update(created_by=obj.created_by)
            membership_set(campaign=obj, user=request.user, role=Role.ADMIN)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["campaign", "user", "role"]
    list_filter = ["role", "campaign"]
    raw_id_fields = ["user"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Listed and searchable, never edited here: a change must go through the services.

    Tasks, leases and votes carry counters (``vote_count``, ``lease_count``, ``vote_seq``) and
    a consensus that the services keep in step; an edit in the admin would skip them. Reviewer
    decisions are the way to change a clip's label, the API the way to vote.
    """

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "clip", "status", "label", "agreement", "vote_count"]
    list_filter = ["status", "is_gold", "campaign"]
    search_fields = ["id", "clip__id"]
    list_select_related = ["campaign", "clip"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "task", "annotator", "state", "expires_at"]
    list_filter = ["state", "campaign"]
    search_fields = ["id", "task__id", "annotator__username"]
    list_select_related = ["campaign", "task", "annotator"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "task", "annotator", "answer", "is_valid", "created_at"]
    list_filter = ["answer", "is_valid", "campaign"]
    search_fields = ["id", "task__id", "annotator__username"]
    list_select_related = ["campaign", "task", "annotator"]


@admin.register(GoldBatch)
class GoldBatchAdmin(admin.ModelAdmin):
    list_display = [
        "id", "campaign", "annotator", "number", "gold_correct", "gold_total", "verdict",
        "review", "reviewed_by", "created_at",
    ]  # fmt: skip
    list_filter = ["verdict", "review", "campaign"]
    raw_id_fields = ["annotator", "reviewed_by"]
    readonly_fields = ["created_at"]


@admin.register(CampaignStatistics)
class CampaignStatisticsAdmin(admin.ModelAdmin):
    list_display = ["campaign", "computed_at", "duration_ms"]
    readonly_fields = ["campaign", "data", "computed_at", "duration_ms"]


# Review and exports ------------------------------------------------------------------------------
from .models import ExportJob, ReviewDecision  # noqa: E402


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    """Read-only: the history is append-only, a decision is reversed by a new decision."""

    list_display = ["id", "campaign", "task", "reviewer", "action", "label", "created_at"]
    list_filter = ["action", "campaign"]
    list_select_related = ["campaign", "reviewer"]


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "kind", "status", "rows_done", "rows_total", "created_at"]
    list_filter = ["kind", "status", "campaign"]
    raw_id_fields = ["created_by"]
    readonly_fields = ["file", "attempt", "heartbeat_at", "created_at", "finished_at"]


from .models import CampaignSourceVideo  # noqa: E402


@admin.register(CampaignSourceVideo)
class CampaignSourceVideoAdmin(admin.ModelAdmin):
    """Which campaign each source video feeds (imports create the link; the API shows it)."""

    list_display = ["source_video", "campaign", "created_at"]
    list_filter = ["campaign"]
    list_select_related = ["source_video", "campaign"]
    raw_id_fields = ["source_video", "campaign"]
    search_fields = ["source_video__title", "source_video__checksum"]

    def get_queryset(self, request):
        heavy = ["scan", "shots", "tracks", "plan"]
        return super().get_queryset(request).defer(*(f"source_video__{f}" for f in heavy))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Append-only: the services write it, nobody edits it."""

    list_display = ["created_at", "campaign", "actor", "action"]
    list_filter = ["action", "campaign"]
    list_select_related = ["campaign", "actor"]
