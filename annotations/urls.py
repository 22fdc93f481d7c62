"""API routes of the annotations app, mounted under /api/v1/."""

from django.urls import path

from labelstudio_ferv.converters import IdConverter  # noqa: F401  (registers lsf_id)

from . import api, campaign_api, guidelines_api

urlpatterns = [
    path("auth/token/", api.TokenView.as_view(), name="auth-token"),
    path("campaigns/", campaign_api.CampaignsView.as_view(), name="campaign-list"),
    path("campaigns/<lsf_id:campaign_id>/next/", api.NextView.as_view(), name="campaign-next"),
    path(
        "campaigns/<lsf_id:campaign_id>/last-answer/",
        api.LastAnswerView.as_view(),
        name="campaign-last-answer",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/progress/",
        api.ProgressView.as_view(),
        name="campaign-progress",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/progress/history/",
        guidelines_api.HistoryView.as_view(),
        name="campaign-progress-history",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/guidelines/",
        guidelines_api.GuidelinesView.as_view(),
        name="campaign-guidelines",
    ),
    path("scenes/", guidelines_api.ScenesView.as_view(), name="scene-list"),
    path(
        "campaigns/<lsf_id:campaign_id>/tasks/<lsf_id:task_id>/gold/",
        api.GoldView.as_view(),
        name="task-gold",
    ),
    path(
        "assignments/<lsf_id:assignment_id>/answer/",
        api.AnswerView.as_view(),
        name="assignment-answer",
    ),
    path(
        "assignments/<lsf_id:assignment_id>/answer-and-next/",
        api.AnswerNextView.as_view(),
        name="assignment-answer-next",
    ),
    path(
        "assignments/<lsf_id:assignment_id>/skip/", api.SkipView.as_view(), name="assignment-skip"
    ),
]

# Agreement statistics and recomputes (reviewers and admins).
from . import stats_api  # noqa: E402

urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/statistics/",
        stats_api.StatisticsView.as_view(),
        name="campaign-statistics",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/statistics/refresh/",
        stats_api.StatisticsRefreshView.as_view(),
        name="campaign-statistics-refresh",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/audit-queue/",
        stats_api.AuditQueueView.as_view(),
        name="campaign-audit-queue",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/signals/",
        stats_api.SignalsView.as_view(),
        name="campaign-signals",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/recompute/",
        stats_api.RecomputeView.as_view(),
        name="campaign-recompute",
    ),
]

# Review queue, decisions and Improper batches (reviewers and admins; see REVIEW.md).
from . import review_api  # noqa: E402

urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/review/queue/",
        review_api.ReviewQueueView.as_view(),
        name="review-queue",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/ds-disagreements/",
        review_api.DisagreementQueueView.as_view(),
        name="review-ds-disagreements",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/tasks/<lsf_id:task_id>/",
        review_api.ReviewTaskView.as_view(),
        name="review-task",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/tasks/<lsf_id:task_id>/decisions/",
        review_api.TaskDecisionsView.as_view(),
        name="review-task-decisions",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/decisions/",
        review_api.CampaignDecisionsView.as_view(),
        name="review-decisions",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/batches/",
        review_api.BatchQueueView.as_view(),
        name="review-batches",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/review/batches/<lsf_id:batch_id>/decision/",
        review_api.BatchDecisionView.as_view(),
        name="review-batch-decision",
    ),
]

# Exports (reviewers and admins).
from . import export_api  # noqa: E402

urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/exports/",
        export_api.ExportListView.as_view(),
        name="export-list",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/exports/<lsf_id:job_id>/",
        export_api.ExportDetailView.as_view(),
        name="export-detail",
    ),
]

# Annotator pauses and reinstatements (reviewers and admins; see quality.py).
from . import quality_api  # noqa: E402

urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/annotators/<str:username>/reinstate/",
        quality_api.ReinstateView.as_view(),
        name="annotator-reinstate",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/pauses/",
        quality_api.PauseListView.as_view(),
        name="campaign-pauses",
    ),
]

# Running a campaign: its rules and state (admins).
urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/",
        campaign_api.CampaignDetailView.as_view(),
        name="campaign-detail",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/pause/",
        campaign_api.CampaignPauseView.as_view(),
        name="campaign-pause",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/resume/",
        campaign_api.CampaignResumeView.as_view(),
        name="campaign-resume",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/close/",
        campaign_api.CampaignCloseView.as_view(),
        name="campaign-close",
    ),
]

# People, the task list, the audit log and the gold set in bulk.
urlpatterns += [
    path(
        "campaigns/<lsf_id:campaign_id>/members/",
        campaign_api.MembersView.as_view(),
        name="campaign-members",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/members/<str:username>/",
        campaign_api.MemberView.as_view(),
        name="campaign-member",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/tasks/",
        campaign_api.TasksView.as_view(),
        name="campaign-tasks",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/audit/",
        campaign_api.AuditView.as_view(),
        name="campaign-audit",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/gold/import/",
        campaign_api.GoldImportView.as_view(),
        name="campaign-gold-import",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/gold/candidates/",
        campaign_api.GoldCandidatesView.as_view(),
        name="campaign-gold-candidates",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/gold/export/",
        campaign_api.GoldExportView.as_view(),
        name="campaign-gold-export",
    ),
]
