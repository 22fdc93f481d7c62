from django.contrib.auth import views as auth_views
from django.urls import path

import labelstudio_ferv.converters  # noqa: F401 (registers lsf_id)

from . import login, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<lsf_id:campaign_id>/annotate/", views.annotate, name="annotate"),
    path("campaigns/<lsf_id:campaign_id>/review/", views.review, name="review"),
    path("campaigns/<lsf_id:campaign_id>/dashboard/", views.dashboard, name="dashboard"),
    path(
        "campaigns/<lsf_id:campaign_id>/settings/",
        views.campaign_settings,
        name="campaign-settings",
    ),
    path("campaigns/<lsf_id:campaign_id>/members/", views.members, name="members"),
    path("campaigns/<lsf_id:campaign_id>/tasks/", views.tasks, name="tasks"),
    path(
        "campaigns/<lsf_id:campaign_id>/tasks/<lsf_id:task_id>/",
        views.task_history,
        name="task-history",
    ),
    path("campaigns/<lsf_id:campaign_id>/audit/", views.audit, name="audit"),
    path("campaigns/<lsf_id:campaign_id>/gold/", views.gold_page, name="gold"),
    path("campaigns/<lsf_id:campaign_id>/gold/label/", views.gold_workspace, name="gold-workspace"),
    path("campaigns/<lsf_id:campaign_id>/intake/", views.intake, name="intake"),
    path("campaigns/<lsf_id:campaign_id>/guidelines/", views.guidelines, name="guidelines"),
]
