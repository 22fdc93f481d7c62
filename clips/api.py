"""Clip API: upload into a campaign, ingestion progress, retries, source videos and the
candidate pipeline, a clip's place in its source (campaign admins)."""

from collections import Counter
from dataclasses import asdict

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.access import access_campaign
from annotations.models import Role
from labelstudio_ferv.errors import NotFound, PayloadTooLarge, ValidationError
from labelstudio_ferv.openapi import E401, error_response

from . import pipeline, selectors, services
from .models import MediaStatus, SourceVideo
from .serializers import (
    ClipOriginOutput,
    ClipOutput,
    IngestionOutput,
    RetryInput,
    RetryOutput,
    SourceVideoDetailOutput,
    SourceVideoOutput,
    SourceVideoRetryInput,
    SourceVideoUploadInput,
    SourceVideoUploadOutput,
    UploadInput,
    UploadOutput,
)
from .uploads import ClipSizeLimitHandler, SourceSizeLimitHandler

ERRORS = {
    400: error_response("Malformed request; every input rejected."),
    401: E401,
    403: error_response("Not an admin of this campaign."),
    404: error_response("No such campaign (or not a member)."),
}


class ClipUploadView(APIView):
    """Upload clips into a campaign; each file is accepted or rejected on its own."""

    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Before the body is parsed: oversized files are dropped as they arrive.
        request.upload_handlers.insert(0, ClipSizeLimitHandler(request))
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": UploadInput},
        responses={201: UploadOutput, 200: UploadOutput, **ERRORS},
        summary="Upload clips",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN
        )
        files = request.FILES.getlist("files")  # parses the body
        oversized = list(getattr(request._request, "oversized_uploads", []))
        scenes = request.data.getlist("scene") if hasattr(request.data, "getlist") else []
        if not files and not oversized:
            raise ValidationError("files: send one or more clip files in the 'files' field")
        if not scenes or (len(scenes) != 1 and len(scenes) != len(files) + len(oversized)):
            raise ValidationError("scene: give one scene for all files, or one per file")
        scene_for = [scenes[0]] * len(files) if len(scenes) == 1 else scenes
        lookup = {name: services.scene_lookup(name) for name in set(scene_for)}
        items = [(f.name, lookup[scene_for[i]], f) for i, f in enumerate(files)]
        results = services.campaign_ingest(campaign=campaign, items=items)
        limit_mib = settings.CLIP_MAX_UPLOAD_BYTES / 2**20
        results += [
            services.IngestResult(
                name=name, status="rejected",
                message=f"{name}: over the {limit_mib:.1f} MiB limit for one clip; not stored",
            )
            for name in oversized
        ]  # fmt: skip
        counts = Counter(r.status for r in results)
        body = {key: counts[key] for key in ("created", "existing", "rejected")}
        body["results"] = [asdict(r) for r in results]
        if body["rejected"] == len(results):
            raise ValidationError(
                "No clip was accepted: " + "; ".join(r.message for r in results[:5]),
                details=body["results"],
            )
        code = status.HTTP_201_CREATED if body["created"] else status.HTTP_200_OK
        return Response(UploadOutput(body).data, status=code)


class IngestionView(APIView):
    """How a campaign's clips stand: counts by processing status and the latest failures."""

    @extend_schema(responses={200: IngestionOutput, **ERRORS}, summary="Ingestion progress")
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        progress = selectors.ingestion_progress(campaign_id=campaign_id)
        return Response(IngestionOutput(progress).data)


class IngestionRetryView(APIView):
    """Send failed clips back to be processed again."""

    @extend_schema(request=RetryInput, responses={200: RetryOutput, **ERRORS}, summary="Retry")
    def post(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        data = RetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        clips = selectors.campaign_clips(campaign_id=campaign_id)
        if "clip_ids" in data.validated_data:
            clips = clips.filter(pk__in=data.validated_data["clip_ids"])
        return Response({"retried": services.clips_retry_failed(clips=clips)})


class ClipDetailView(APIView):
    """One clip of a campaign with its processing status and error (reviewers and admins)."""

    @extend_schema(responses={200: ClipOutput, **ERRORS}, summary="Clip status")
    def get(self, request: Request, campaign_id: int, clip_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        clip = get_object_or_404(
            selectors.campaign_clips(campaign_id=campaign_id).select_related("scene"), pk=clip_id
        )
        return Response(ClipOutput(clip, context={"request": request}).data)


# ------------------------------------------------------------------------- source videos

VIDEO_404 = OpenApiResponse(description="No such campaign or source video (or not a member)")
CONFLICT = OpenApiResponse(description="The video is busy or belongs to another campaign")


def _video_detail(campaign_id: int, video_id: int) -> dict:
    detail = selectors.source_video_detail(campaign_id=campaign_id, video_id=video_id)
    if detail is None:
        raise NotFound("Source video not found.")
    return detail


class SourceVideoListView(APIView):
    """Raw videos of a campaign: import one, or see where each one's pipeline stands."""

    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Before the body is parsed: an oversized video is dropped as it arrives.
        request.upload_handlers.insert(0, SourceSizeLimitHandler(request))
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status", str, enum=list(MediaStatus.values), description="Only these videos."
            )
        ],
        responses={200: SourceVideoOutput(many=True), **ERRORS},
        summary="List source videos",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in MediaStatus.values:
            raise ValidationError(f"status: one of {', '.join(MediaStatus.values)}")
        videos = selectors.campaign_source_videos(campaign_id=campaign_id, status=wanted)
        return Response(SourceVideoOutput(videos, many=True, context={"request": request}).data)

    @extend_schema(
        request={"multipart/form-data": SourceVideoUploadInput},
        responses={
            201: SourceVideoUploadOutput,
            200: SourceVideoUploadOutput,
            409: CONFLICT,
            413: OpenApiResponse(description="The file is over the size limit"),
            **ERRORS,
        },
        summary="Import a source video",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN
        )
        sent = "file" in request.FILES  # parses the body
        oversized = list(getattr(request._request, "oversized_uploads", []))
        if oversized and not sent:
            raise PayloadTooLarge(f"{oversized[0]}: over the size limit for a source video")
        data = SourceVideoUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        scene = services.scene_lookup(values.pop("scene"))
        if scene is None:
            raise ValidationError("scene: no scene by that name")
        upload = values.pop("file")
        video, created = pipeline.source_video_create_from_upload(
            upload=upload,
            scene=scene,
            campaign=campaign,
            title=values.pop("title", ""),
            params=values,
            created_by=request.user,
        )
        body = {**_video_detail(campaign.pk, video.pk), "created": created}
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(
            SourceVideoUploadOutput(body, context={"request": request}).data, status=code
        )


class SourceVideoDetailView(APIView):
    """One source video: stages and progress, shots, tracks, candidates, or why it has none."""

    @extend_schema(
        responses={200: SourceVideoDetailOutput, **ERRORS, 404: VIDEO_404},
        summary="Source video",
    )
    def get(self, request: Request, campaign_id: int, video_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        return Response(
            SourceVideoDetailOutput(
                _video_detail(campaign_id, video_id), context={"request": request}
            ).data
        )


class SourceVideoRetryView(APIView):
    """Run a video's pipeline again from the stage that failed (or a stage named)."""

    @extend_schema(
        request=SourceVideoRetryInput,
        responses={200: SourceVideoDetailOutput, 409: CONFLICT, **ERRORS, 404: VIDEO_404},
        summary="Retry a source video",
    )
    def post(self, request: Request, campaign_id: int, video_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        data = SourceVideoRetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        video = SourceVideo.objects.filter(campaign_id=campaign_id, pk=video_id).first()
        if video is None:
            raise NotFound("Source video not found.")
        pipeline.source_video_retry(video=video, stage=values.pop("stage", None), params=values)
        return Response(
            SourceVideoDetailOutput(
                _video_detail(campaign_id, video_id), context={"request": request}
            ).data
        )


class ClipOriginView(APIView):
    """Where a clip comes from: its source video, time span and per-frame face boxes."""

    @extend_schema(
        responses={200: ClipOriginOutput, **ERRORS, 404: OpenApiResponse(
            description="No such campaign or clip, or the clip was not cut from a source video"
        )},
        summary="Clip origin",
    )  # fmt: skip
    def get(self, request: Request, campaign_id: int, clip_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        clip = get_object_or_404(selectors.campaign_clips(campaign_id=campaign_id), pk=clip_id)
        origin = selectors.clip_origin(clip=clip)
        if origin is None:
            raise NotFound("This clip was not cut from a source video.")
        return Response(ClipOriginOutput(origin, context={"request": request}).data)
