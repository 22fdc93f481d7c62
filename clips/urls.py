"""API routes of the clips app, mounted under /api/v1/."""

from django.urls import path

from . import api

urlpatterns = [
    path("campaigns/<int:campaign_id>/clips/", api.ClipUploadView.as_view(), name="clip-upload"),
    path(
        "campaigns/<int:campaign_id>/clips/<int:clip_id>/",
        api.ClipDetailView.as_view(),
        name="clip-detail",
    ),
    path(
        "campaigns/<int:campaign_id>/clips/<int:clip_id>/origin/",
        api.ClipOriginView.as_view(),
        name="clip-origin",
    ),
    path(
        "campaigns/<int:campaign_id>/source-videos/",
        api.SourceVideoListView.as_view(),
        name="source-video-list",
    ),
    path(
        "campaigns/<int:campaign_id>/source-videos/<int:video_id>/",
        api.SourceVideoDetailView.as_view(),
        name="source-video-detail",
    ),
    path(
        "campaigns/<int:campaign_id>/source-videos/<int:video_id>/retry/",
        api.SourceVideoRetryView.as_view(),
        name="source-video-retry",
    ),
    path(
        "campaigns/<int:campaign_id>/ingestion/",
        api.IngestionView.as_view(),
        name="clip-ingestion",
    ),
    path(
        "campaigns/<int:campaign_id>/ingestion/retry/",
        api.IngestionRetryView.as_view(),
        name="clip-ingestion-retry",
    ),
]
