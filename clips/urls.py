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
