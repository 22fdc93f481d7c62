"""Server-rendered pages: login and the campaigns a user belongs to."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from annotations import selectors


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Show the campaigns the user is a member of, with the user's role in each."""
    campaigns = selectors.campaigns_for_user(user=request.user)
    return render(request, "frontend/home.html", {"campaigns": campaigns})
