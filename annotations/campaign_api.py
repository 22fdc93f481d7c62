"""Campaign administration API: create and edit campaigns, pause, resume and close them.

Views check the shape of input, resolve ids through ``access_campaign`` and call one service of
services.py or campaigns.py; rules live there.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.errors import PermissionDenied
from labelstudio_ferv.openapi import E400, E401, error_response, path_id

from . import campaigns, rules, services
from .access import access_campaign
from .api import CampaignListView
from .models import Campaign, Role

CAMPAIGN_ID = path_id("campaign_id", "A campaign you are a member of.")
E403_ADMIN = error_response("Only the campaign's admins (and superusers) may do this.")
E404 = error_response("No such campaign, or you are not a member of it.")


# --- shapes ------------------------------------------------------------------------------------


class CampaignInput(serializers.Serializer):
    """A campaign's name, text and rules; the service checks how the rules fit together."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False)
    votes_per_clip = serializers.IntegerField(min_value=1, max_value=rules.MAX_VOTES_CHECKED)
    max_votes = serializers.IntegerField(min_value=1, max_value=rules.MAX_VOTES_CHECKED)
    min_agreement = serializers.FloatField(min_value=0.01, max_value=1)
    gold_share = serializers.FloatField(min_value=0, max_value=1)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600)
    batch_size = serializers.IntegerField(min_value=1, max_value=10000)
    aggregation = serializers.ChoiceField(choices=Campaign.Aggregation.choices)
    ds_threshold = serializers.FloatField(min_value=0.01, max_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # On create, every rule not given takes the model's default.
        if not self.partial:
            for name, field in self.fields.items():
                if name != "name":
                    field.required = False


class CampaignPatchInput(CampaignInput):
    """Any subset of a campaign's fields."""

    name = serializers.CharField(max_length=200, required=False)


class CampaignDetailOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    state = serializers.ChoiceField(
        choices=Campaign.State.choices,
        help_text="paused or closed: no clips are handed out (next/ answers 409).",
    )
    votes_per_clip = serializers.IntegerField()
    max_votes = serializers.IntegerField()
    min_agreement = serializers.FloatField()
    gold_share = serializers.FloatField()
    lease_seconds = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    aggregation = serializers.ChoiceField(choices=Campaign.Aggregation.choices)
    ds_threshold = serializers.FloatField()
    created_at = serializers.DateTimeField()


def _detail(campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
    return Response(CampaignDetailOutput(campaign).data, status=code)


def _admin(request: Request, campaign_id: int) -> Campaign:
    campaign, _ = access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
    return campaign


# --- views -------------------------------------------------------------------------------------


class CampaignsView(CampaignListView):
    """Your campaigns (GET), or a new campaign of which you become the admin (POST)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=CampaignInput,
        responses={
            201: CampaignDetailOutput,
            400: E400,
            401: E401,
            403: error_response(
                "You may not create campaigns (superusers and holders of the "
                "annotations.add_campaign permission may)."
            ),
        },
        summary="Create a campaign",
        tags=["campaigns"],
    )
    def post(self, request: Request) -> Response:
        if not campaigns.user_may_create_campaigns(request.user):
            raise PermissionDenied("You may not create campaigns.")
        data = CampaignInput(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(created_by=request.user, **data.validated_data)
        return _detail(campaign, status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    """A campaign's rules and state (any member); admins change them with PATCH."""

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: CampaignDetailOutput, 401: E401, 404: E404},
        summary="A campaign's rules and state",
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        # A superuser who is not a member sees it too (access_campaign keeps annotating,
        # the annotator level, to members).
        least = Role.REVIEWER if request.user.is_superuser else Role.ANNOTATOR
        campaign, _ = access_campaign(user=request.user, campaign_id=campaign_id, min_role=least)
        return _detail(campaign)

    @extend_schema(
        request=CampaignPatchInput,
        parameters=[CAMPAIGN_ID],
        responses={200: CampaignDetailOutput, 400: E400, 401: E401, 403: E403_ADMIN, 404: E404},
        summary="Edit a campaign's rules (admins)",
        tags=["campaigns"],
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        data = CampaignPatchInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        campaign = campaigns.campaign_update(
            campaign=campaign, actor=request.user, **data.validated_data
        )
        return _detail(campaign)


STATE_RESPONSES = {
    200: CampaignDetailOutput,
    401: E401,
    403: E403_ADMIN,
    404: E404,
    409: error_response("The campaign is closed (code `campaign_closed`)."),
}


class CampaignPauseView(APIView):
    """Stop handing out clips; answers to clips already held still count. Pausing a paused
    campaign changes nothing."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Pause a campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_pause(campaign=campaign, actor=request.user))


class CampaignResumeView(APIView):
    """Hand out clips again. A closed campaign cannot be resumed (409 `campaign_closed`)."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Resume a paused campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_resume(campaign=campaign, actor=request.user))


class CampaignCloseView(APIView):
    """Close the campaign for good: no more clips are handed out; review and exports go on."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Close a campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_close(campaign=campaign, actor=request.user))
