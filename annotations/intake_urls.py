"""API routes of campaign intake (clip uploads, ingestion, source videos), under /api/v1/."""

from django.urls import path

from labelstudio_ferv.converters import IdConverter  # noqa: F401  (registers lsf_id)

from . import intake_api as api

urlpatterns = [
    path("campaigns/<lsf_id:campaign_id>/clips/", api.ClipUploadView.as_view(), name="clip-upload"),
    path(
        "campaigns/<lsf_id:campaign_id>/clips/<lsf_id:clip_id>/",
        api.ClipDetailView.as_view(),
        name="clip-detail",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/clips/<lsf_id:clip_id>/origin/",
        api.ClipOriginView.as_view(),
        name="clip-origin",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/source-videos/",
        api.SourceVideoListView.as_view(),
        name="source-video-list",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/source-videos/<lsf_id:video_id>/",
        api.SourceVideoDetailView.as_view(),
        name="source-video-detail",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/source-videos/<lsf_id:video_id>/retry/",
        api.SourceVideoRetryView.as_view(),
        name="source-video-retry",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/ingestion/",
        api.IngestionView.as_view(),
        name="clip-ingestion",
    ),
    path(
        "campaigns/<lsf_id:campaign_id>/ingestion/retry/",
        api.IngestionRetryView.as_view(),
        name="clip-ingestion-retry",
    ),
]
