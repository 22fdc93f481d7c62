"""Annotator quality API (reviewers and admins): pauses, their history, reinstatements.

An annotator is paused automatically (see quality.py and AGGREGATION.md); a reviewer lets them
go on with ``reinstate/``. Every pause and reinstatement is listed by ``pauses/``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.openapi import E400, E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import quality
from .access import access_campaign
from .models import AnnotatorPause, Role

CAMPAIGN_ID = path_id("campaign_id", "A campaign you review or administer.")
USERNAME = OpenApiParameter(
    "username", str, OpenApiParameter.PATH, description="The annotator's username."
)
E403 = error_response("Reviewers and admins only.")
E404 = error_response("No such campaign (or you are not a member of it), or no such member.")
E409 = error_response("`not_paused`: the annotator is not paused.")


class ReinstateInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class MemberStateOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    paused = serializers.SerializerMethodField()
    paused_at = serializers.DateTimeField(allow_null=True)
    pause_reason = serializers.CharField()

    def get_paused(self, member) -> bool:
        return member.paused_at is not None


class PauseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    annotator = serializers.CharField(source="annotator.username")
    action = serializers.CharField(help_text='"pause" or "reinstate".')
    by = serializers.CharField(source="by.username", allow_null=True, default=None)
    batch = serializers.IntegerField(source="batch_id", allow_null=True)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class ReinstateView(APIView):
    """Let a paused annotator work again; recorded with who, when and the note."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=ReinstateInput,
        parameters=[CAMPAIGN_ID, USERNAME],
        responses={200: MemberStateOutput, 400: E400, 401: E401, 403: E403, 404: E404, 409: E409},
        summary="Reinstate a paused annotator (reviewers)",
        tags=["review"],
    )
    def post(self, request: Request, campaign_id: int, username: str) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = ReinstateInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = quality.annotator_reinstate(
            campaign=campaign, username=username, reviewer=request.user,
            note=data.validated_data["note"],
        )  # fmt: skip
        return Response(MemberStateOutput(member).data)


class PauseListView(APIView):
    """Every pause and reinstatement in the campaign, newest first (at most 500)."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: PauseOutput(many=True), 401: E401, 403: E403, 404: E404},
        summary="Pauses and reinstatements (reviewers)",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        rows = (
            AnnotatorPause.objects.filter(campaign_id=campaign_id)
            .select_related("annotator", "by")
            .order_by("-id")[:500]
        )
        return Response(PauseOutput(rows, many=True).data)
