"""The project's URLs plus views that fail, for the tests of unexpected errors."""

from django.urls import path

from labelstudio_ferv.urls import handler400, handler404, handler500
from labelstudio_ferv.urls import urlpatterns as project


def fail(request):
    raise RuntimeError("an unexpected failure")


urlpatterns = [path("api/v1/failing/", fail), path("failing/", fail), *project]
__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
