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
    path(
        "campaigns/<int:campaign_id>/settings/",
        views.campaign_settings,
        name="campaign-settings",
    ),
    path("campaigns/<int:campaign_id>/members/", views.members, name="members"),
    path("campaigns/<int:campaign_id>/tasks/", views.tasks, name="tasks"),
    path(
        "campaigns/<int:campaign_id>/tasks/<int:task_id>/",
        views.task_history,
        name="task-history",
    ),
    path("campaigns/<int:campaign_id>/audit/", views.audit, name="audit"),
    path("campaigns/<int:campaign_id>/gold/", views.gold_page, name="gold"),
]
