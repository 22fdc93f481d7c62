"""Server-rendered pages: login, the campaigns a user belongs to, and the shells of the
annotator workspace, the review queue and the dashboard.

The three shells only check membership and role; every piece of data on them comes from the
documented REST API through the page's JavaScript (frontend/static/frontend/*.js).
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from annotations import quality, selectors
from annotations.access import access_campaign
from annotations.agreement import STATUS_KEYS
from annotations.campaigns import user_may_create_campaigns
from annotations.models import Role
from clips.models import Scenario, Scene
from labelstudio_ferv.errors import NotFound, PermissionDenied
from labelstudio_ferv.expressions import Answer


def answer_keys() -> list[dict[str, str]]:
    """Return the answers as the pages show them: API key, name and keyboard key.

    Keys 1-7 are the classes in release order and 0 is PASS. The pages read this list from the
    page itself (``json_script``), so ``labelstudio_ferv/expressions.py`` stays the one definition.
    """
    return [
        {"key": a.key, "name": a.label, "hotkey": "0" if a == Answer.PASS else str(a.value + 1)}
        for a in Answer
    ]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Show the campaigns the user is a member of, with the user's role in each."""
    campaigns = selectors.campaigns_for_user(user=request.user)
    context = {"campaigns": campaigns, "may_create": user_may_create_campaigns(request.user)}
    return render(request, "frontend/home.html", context)


def _page(
    request: HttpRequest, campaign_id: int, template: str, min_role: str, with_member=None, **extra
) -> HttpResponse:
    try:
        campaign, membership = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=min_role
        )
    except NotFound:
        raise Http404("Campaign not found.")
    except PermissionDenied as exc:
        return render(request, "frontend/403.html", {"message": exc.message}, status=403)
    if with_member is not None:
        extra.update(with_member(campaign, membership))
    context = {"campaign": campaign, "role": membership.role, "answers": answer_keys(), **extra}
    return render(request, template, context)


@login_required
def annotate(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The annotator workspace (any member).

    A member still in the campaign's qualification gets its progress with the page, so the
    workspace says so before the first answer (each answer's feedback then updates it).
    """

    def qualification(campaign, membership) -> dict:
        progress = quality.qualification_progress(campaign=campaign, membership=membership)
        return {"qualification": progress}

    return _page(
        request, campaign_id, "frontend/annotate.html", Role.ANNOTATOR, with_member=qualification
    )


@login_required
def review(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The review queue (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/review.html", Role.REVIEWER)


@login_required
def dashboard(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign dashboard (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/dashboard.html", Role.REVIEWER)


@login_required
def campaign_settings(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign's rules and state: edit, pause, resume, close (admins)."""
    scenes = Scene.objects.select_related("scenario").order_by("scenario__position", "position")
    return _page(request, campaign_id, "frontend/campaign_settings.html", Role.ADMIN, scenes=scenes)


@login_required
def members(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign's people and paused annotators (reviewers; admins change them)."""
    return _page(request, campaign_id, "frontend/members.html", Role.REVIEWER)


@login_required
def tasks(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign's clips, filtered, a page at a time (reviewers and admins).

    The filters' choices (statuses, the fixed scenes and scenarios) are page chrome; the rows
    come from the API.
    """
    return _page(
        request, campaign_id, "frontend/tasks.html", Role.REVIEWER,
        statuses=STATUS_KEYS,
        scenes=Scene.objects.order_by("position").values_list("name", flat=True),
        scenarios=Scenario.objects.order_by("position").values_list("name", flat=True),
    )  # fmt: skip


@login_required
def task_history(request: HttpRequest, campaign_id: int, task_id: int) -> HttpResponse:
    """One clip's votes and review decisions (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/task_history.html", Role.REVIEWER, task_id=task_id)


@login_required
def audit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign's audit log, newest first (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/audit.html", Role.REVIEWER)


@login_required
def gold_page(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Gold labels in bulk: import a CSV, export one (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/gold.html", Role.REVIEWER)


@login_required
def gold_workspace(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Building the gold set: the keyboard workspace over a stratified sample of clips, where
    each answer becomes the clip's gold label (reviewers and admins)."""
    return _page(request, campaign_id, "frontend/gold_workspace.html", Role.REVIEWER, gold=True)


@login_required
def intake(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Uploading clips and source videos into the campaign, and following them (admins)."""
    return _page(request, campaign_id, "frontend/intake.html", Role.ADMIN)


@login_required
def guidelines(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Editing the campaign's guidelines and example clips (admins)."""
    return _page(request, campaign_id, "frontend/guidelines.html", Role.ADMIN)
