import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import api, media_views

# API paths answer errors raised outside a view in the JSON error shape too (see errors.py).
handler400 = "labelstudio_ferv.errors.bad_request"
handler404 = "labelstudio_ferv.errors.page_not_found"
handler500 = "labelstudio_ferv.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/health/", api.HealthView.as_view(), name="api-health"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("annotations.urls")),
    path("api/v1/", include("annotations.intake_urls")),
    path("", include("frontend.urls")),
]

# Media files answer only a signed URL, for the user it was issued to (media_views.MediaView).
urlpatterns += [
    re_path(
        rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<name>.+)$",
        media_views.MediaView.as_view(),
        name="media",
    ),
]
