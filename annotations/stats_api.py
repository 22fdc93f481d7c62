"""Agreement statistics and recomputes for reviewers and admins."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.errors import ServiceUnavailable, ValidationError
from labelstudio_ferv.expressions import CLASS_KEYS, answer_from_key
from labelstudio_ferv.openapi import E401, error_response
from labelstudio_ferv.parsers import JSONParser
from labelstudio_ferv.queue import send_now

from . import audit_sample
from .access import access_campaign
from .models import CampaignStatistics, Role
from .serializers import ClipToAnnotateOutput

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


_AuditClip = inline_serializer(
    "AuditClip",
    {"task": serializers.IntegerField(source="pk"), "clip": ClipToAnnotateOutput()},
    many=True,
)
AuditQueueOutput = inline_serializer(
    "AuditQueueOut",
    {
        "clips": _AuditClip,
        "precision": serializers.DictField(
            help_text="Measured precision: audited, right, precision, interval_95 (Wilson), "
            "per_scenario, per_scene."
        ),
    },
)
AuditAnswerInput = inline_serializer(
    "AuditAnswerIn",
    {
        "task": serializers.IntegerField(),
        "label": serializers.CharField(help_text="Your answer: a class key (not pass)."),
    },
)


class AuditQueueView(APIView):
    """The blind audit: sampled trusted clips to label without their votes (reviewers).

    GET: the next clips nobody has audited (the clip and its media only, never its votes or
    label) and the precision measured so far. POST ``{task, label}``: your answer; 404 if the
    clip is not in the sample, 409 ``already_audited``.
    """

    parser_classes = [JSONParser]

    @extend_schema(responses={200: AuditQueueOutput, **ERRORS}, summary="Audit queue")
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        tasks = audit_sample.audit_queue(campaign=campaign)
        context = {"request": request}
        return Response(
            {
                "clips": [
                    {"task": t.pk, "clip": ClipToAnnotateOutput(t.clip, context=context).data}
                    for t in tasks
                ],
                "precision": audit_sample.audit_precision(campaign_id=campaign.pk),
            }
        )

    @extend_schema(
        request=AuditAnswerInput,
        responses={201: inline_serializer("AuditAnswerOut", {"task": serializers.IntegerField()}),
                   400: error_response("Invalid input."), 409: error_response("Already audited."),
                   **ERRORS},
        summary="Answer an audit clip",
    )  # fmt: skip
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = AuditAnswerInput.__class__(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["label"] not in CLASS_KEYS:
            raise ValidationError(
                f"label: one of {', '.join(CLASS_KEYS)}.",
                details={"label": [f"One of {', '.join(CLASS_KEYS)}."]},
            )
        done = audit_sample.audit_answer(
            campaign=campaign, reviewer=request.user, task_id=data.validated_data["task"],
            answer=int(answer_from_key(data.validated_data["label"])),
        )  # fmt: skip
        return Response({"task": done.task_id}, status=status.HTTP_201_CREATED)


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
