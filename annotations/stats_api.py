"""Agreement statistics and recomputes for reviewers and admins."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.errors import ServiceUnavailable
from labelstudio_ferv.openapi import E401, error_response
from labelstudio_ferv.queue import send_now

from .access import access_campaign
from .models import CampaignStatistics, Role

ERRORS = {
    401: E401,
    403: error_response("The role is too low for this."),
    404: error_response("No such campaign (or not a member)."),
}

StatisticsOutput = inline_serializer(
    "CampaignStatisticsOut",
    {
        "computed_at": serializers.DateTimeField(allow_null=True),
        "duration_ms": serializers.IntegerField(allow_null=True),
        "data": serializers.DictField(
            allow_null=True,
            help_text="alpha, fleiss_kappa, per_scenario, per_scene, per_class, confusion "
            "(final label x answer), annotators (votes, agreement, gold accuracy, PASS rate, "
            "median time).",
        ),
    },
)
QueuedOutput = inline_serializer("Queued", {"queued": serializers.BooleanField()})


class StatisticsView(APIView):
    """The campaign's latest stored agreement statistics (null until first computed)."""

    @extend_schema(responses={200: StatisticsOutput, **ERRORS}, summary="Agreement statistics")
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        stats = CampaignStatistics.objects.filter(campaign_id=campaign_id).first()
        if stats is None:
            return Response({"computed_at": None, "duration_ms": None, "data": None})
        return Response(
            {"computed_at": stats.computed_at, "duration_ms": stats.duration_ms, "data": stats.data}
        )


_PairSignal = inline_serializer(
    "CollusionSignal",
    {
        "annotators": serializers.ListField(child=serializers.CharField()),
        "annotator_ids": serializers.ListField(child=serializers.IntegerField()),
        "shared_clips": serializers.IntegerField(),
        "agreed": serializers.IntegerField(help_text="Shared clips with the same answer."),
        "expected": serializers.FloatField(
            help_text="Same answers expected from their confusions if independent."
        ),
        "z": serializers.FloatField(),
        "flagged": serializers.BooleanField(),
    },
    many=True,
)
_FatigueSignal = inline_serializer(
    "FatigueSignal",
    {
        "annotator": serializers.CharField(),
        "annotator_id": serializers.IntegerField(),
        "checked_votes": serializers.IntegerField(
            help_text="Votes on gold or settled clips, checked against the reference."
        ),
        "accuracy_first_half": serializers.FloatField(),
        "accuracy_second_half": serializers.FloatField(),
        "accuracy_by_quarter": serializers.ListField(child=serializers.FloatField()),
        "z": serializers.FloatField(),
        "flagged": serializers.BooleanField(),
    },
    many=True,
)
SignalsOutput = inline_serializer(
    "CampaignSignalsOut",
    {
        "computed_at": serializers.DateTimeField(allow_null=True),
        "collusion": _PairSignal,
        "fatigue": _FatigueSignal,
        "rules": serializers.DictField(help_text="The thresholds the flags used."),
    },
)


class SignalsView(APIView):
    """Collusion and fatigue signals, from the latest statistics refresh (see AGGREGATION.md).

    Pairs of annotators who agree far more than their confusions explain on shared clips, and
    annotators whose checked accuracy fell from the first half of their votes to the second,
    each with the evidence. Empty lists until the statistics are first computed.
    """

    @extend_schema(responses={200: SignalsOutput, **ERRORS}, summary="Collusion and fatigue")
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        stats = CampaignStatistics.objects.filter(campaign_id=campaign_id).first()
        signals = (stats.data or {}).get("signals", {}) if stats else {}
        return Response(
            {
                "computed_at": stats.computed_at if stats else None,
                "collusion": signals.get("collusion", []),
                "fatigue": signals.get("fatigue", []),
                "rules": signals.get("rules", {}),
            }
        )


class StatisticsRefreshView(APIView):
    """Have a worker recompute the campaign's statistics now."""

    @extend_schema(request=None, responses={202: QueuedOutput, **ERRORS}, summary="Refresh")
    def post(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        _send("annotations.refresh_statistics", campaign_id)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class RecomputeView(APIView):
    """Have a worker recompute every clip's consensus of the campaign, then its statistics."""

    @extend_schema(request=None, responses={202: QueuedOutput, **ERRORS}, summary="Recompute")
    def post(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        _send("annotations.recompute_campaign", campaign_id)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


def _send(task_name: str, campaign_id: int) -> None:
    if not send_now(task_name, campaign_id):
        raise ServiceUnavailable("The task queue is unavailable; try again in a moment.")
