from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/health/", api.HealthView.as_view(), name="api-health"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("annotations.urls")),
    path("api/v1/", include("annotations.intake_urls")),
    path("", include("frontend.urls")),
]

if settings.SERVE_MEDIA:
    # Local media for the embedded default and single-machine set-ups; a real deployment serves
    # media from its shared store (S3-compatible bucket or a web server in front of it).
    prefix = settings.MEDIA_URL.lstrip("/")
    urlpatterns += [
        re_path(rf"^{prefix}(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}),
    ]
