from django.contrib.auth import views as auth_views
from django.urls import path

from . import login, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<int:campaign_id>/annotate/", views.annotate, name="annotate"),
    path("campaigns/<int:campaign_id>/review/", views.review, name="review"),
    path("campaigns/<int:campaign_id>/dashboard/", views.dashboard, name="dashboard"),
    path("campaigns/<int:campaign_id>/intake/", views.intake, name="intake"),
    path("campaigns/<int:campaign_id>/guidelines/", views.guidelines, name="guidelines"),
]
