"""API routes of the clips app, mounted under /api/v1/."""

urlpatterns: list = []
