"""Export API (reviewers and admins): start an export, follow it, download the file.

Views check the shape of input, resolve ids through ``access_campaign`` and call the export
service in exports.py.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.errors import NotFound
from labelstudio_ferv.media_urls import request_user
from labelstudio_ferv.openapi import E400, E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import exports
from .access import access_campaign
from .models import ExportJob, Role
from .review_api import CAMPAIGN_ID, E403, E404, READ_ERRORS

JOB_ID = path_id("job_id", "An export job of the campaign.")
E404_JOB = error_response("No such campaign (or not a member), or no such export of it.")


class ExportInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ExportJob.Kind.choices)
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text="labels: include_gold. votes: pseudonymise (false: admins only). release: "
        "test_share (default 0.2), seed (default 0), include_media (default true), include_gold.",
    )


class ExportOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ExportJob.Kind.choices)
    status = serializers.ChoiceField(choices=ExportJob.Status.choices)
    params = serializers.JSONField()
    rows_done = serializers.IntegerField()
    rows_total = serializers.IntegerField(allow_null=True)
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField(
        help_text="Once done. A votes export with usernames: for admins only."
    )
    error = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_progress(self, job) -> float | None:
        if job.status == ExportJob.Status.DONE:
            return 1.0
        return round(job.rows_done / job.rows_total, 4) if job.rows_total else None

    def get_download_url(self, job) -> str | None:
        user = request_user(self.context)
        url = exports.export_file_url(job, role=self.context["role"], user=user)
        return None if url is None else self.context["request"].build_absolute_uri(url)


class ExportListView(APIView):
    """The campaign's exports, newest first (GET); start a new one (POST)."""

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: ExportOut(many=True), **READ_ERRORS},
        summary="Exports",
        tags=["exports"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        _, membership = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        jobs = ExportJob.objects.filter(campaign_id=campaign_id).select_related("created_by")
        context = {"request": request, "role": membership.role}
        return Response(ExportOut(jobs.order_by("-pk")[:50], many=True, context=context).data)

    @extend_schema(
        request=ExportInput,
        parameters=[CAMPAIGN_ID],
        responses={
            202: OpenApiResponse(ExportOut, description="Queued; poll its status."),
            400: E400,
            401: E401,
            403: error_response(
                "Reviewers and admins only; usernames in a votes export: admins only."
            ),
            404: E404,
        },
        summary="Start an export",
        tags=["exports"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign, membership = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = exports.export_create(
            campaign=campaign,
            kind=data.validated_data["kind"],
            params=data.validated_data["params"],
            created_by=request.user,
            role=membership.role,
        )
        job.refresh_from_db()  # an eager run (embedded default) has finished by now
        context = {"request": request, "role": membership.role}
        return Response(ExportOut(job, context=context).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    """One export's status and progress, and its download link once done."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, JOB_ID],
        responses={200: ExportOut, 401: E401, 403: E403, 404: E404_JOB},
        summary="Export status",
        tags=["exports"],
    )
    def get(self, request: Request, campaign_id: int, job_id: int) -> Response:
        _, membership = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        job = (
            ExportJob.objects.filter(campaign_id=campaign_id, pk=job_id)
            .select_related("created_by")
            .first()
        )
        if job is None:
            raise NotFound("Export not found in this campaign.")
        context = {"request": request, "role": membership.role}
        return Response(ExportOut(job, context=context).data)
