"""API of a campaign's guidelines, the scene list, and progress over time.

Guidelines are edited with ``PATCH /api/v1/campaigns/{id}/`` (fields ``guidelines`` and
``guideline_examples``); this module reads them rendered for the workspace.
"""

from __future__ import annotations

import hashlib

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clips.models import Scene
from labelstudio_ferv.expressions import CLASS_KEYS, CLASS_NAMES
from labelstudio_ferv.media_urls import MediaUrlField
from labelstudio_ferv.openapi import E401, error_response, path_id

from . import guidelines, history
from .access import access_campaign
from .models import Role

CAMPAIGN_ID = path_id("campaign_id", "A campaign you are a member of.")
E403_REVIEWER = error_response("Reviewers and admins only.")
E404 = error_response("No such campaign, or you are not a member of it.")


class ExampleClipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    video_url = MediaUrlField(source="video", allow_null=False)
    poster_url = MediaUrlField(source="poster")


class ExampleClassOutput(serializers.Serializer):
    label = serializers.CharField(help_text="The class key.")
    name = serializers.CharField()
    clips = ExampleClipOutput(many=True)


class GuidelinesOutput(serializers.Serializer):
    markdown = serializers.CharField(help_text="The source, as the admins wrote it.")
    html = serializers.CharField(help_text="Rendered and sanitised: safe to insert in a page.")
    version = serializers.CharField(
        help_text="Changes whenever the guidelines do: the workspace shows them again then."
    )
    examples = ExampleClassOutput(many=True, help_text="Example clips per class, class order.")


class GuidelinesView(APIView):
    """The campaign's guidelines, rendered safely, with their example clips (any member)."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: GuidelinesOutput, 401: E401, 404: E404},
        summary="A campaign's guidelines",
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        least = Role.REVIEWER if request.user.is_superuser else Role.ANNOTATOR
        campaign, _ = access_campaign(user=request.user, campaign_id=campaign_id, min_role=least)
        clips = guidelines.examples_clips(campaign=campaign)
        source = campaign.guidelines + repr(sorted(campaign.guideline_examples.items()))
        body = {
            "markdown": campaign.guidelines,
            "html": guidelines.guidelines_html(campaign.guidelines),
            "version": hashlib.sha256(source.encode()).hexdigest()[:16],
            "examples": [
                {"label": key, "name": name, "clips": clips[key]}
                for key, name in zip(CLASS_KEYS, CLASS_NAMES, strict=True)
                if key in clips
            ],
        }
        return Response(GuidelinesOutput(body, context={"request": request}).data)


class SceneOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    folder = serializers.CharField(help_text="Its folder name in the release (e.g. DailyLife).")
    scenario = serializers.CharField(source="scenario.name")


class ScenesView(APIView):
    """The scenes clips belong to, in release order (any logged-in user)."""

    @extend_schema(
        responses={200: SceneOutput(many=True), 401: E401}, summary="Scenes", tags=["campaigns"]
    )
    def get(self, request: Request) -> Response:
        scenes = Scene.objects.select_related("scenario").order_by("position")
        return Response(SceneOutput(scenes, many=True).data)


class HourOutput(serializers.Serializer):
    hour = serializers.DateTimeField()
    answers = serializers.IntegerField()


class TrustedDayOutput(serializers.Serializer):
    day = serializers.DateField()
    trusted = serializers.IntegerField(help_text="Trusted or adjudicated clips up to that day.")


class AnnotatorStretchOutput(serializers.Serializer):
    username = serializers.CharField()
    answers = serializers.IntegerField(help_text="Answers in the window.")
    active_s = serializers.FloatField(
        help_text="Seconds of work: the gaps under 5 minutes between consecutive answers."
    )
    per_hour = serializers.FloatField(
        allow_null=True, help_text="Answers per active hour (null under a minute of activity)."
    )


class HistoryOutput(serializers.Serializer):
    since = serializers.DateTimeField(help_text="Start of the window (7 days).")
    hours = HourOutput(many=True, help_text="Answers per hour; hours without any are left out.")
    trusted = TrustedDayOutput(many=True, help_text="Cumulative trusted clips per day.")
    trusted_total = serializers.IntegerField()
    votes_left = serializers.IntegerField(help_text="Votes the collecting clips still need.")
    rate_per_hour = serializers.FloatField(help_text="Answers per hour over the last 24 hours.")
    finish_at = serializers.DateTimeField(
        allow_null=True, help_text="Estimated finish at that rate (null: no recent answers)."
    )
    annotators = AnnotatorStretchOutput(many=True)


class HistoryView(APIView):
    """Progress over time: answers per hour over the last 7 days, trusted clips per day, an
    estimated finish, and each annotator's throughput and active time (reviewers and admins)."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: HistoryOutput, 401: E401, 403: E403_REVIEWER, 404: E404},
        summary="Progress over time",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        return Response(HistoryOutput(history.campaign_history(campaign_id=campaign.pk)).data)
