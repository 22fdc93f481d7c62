"""Campaign intake API: clip uploads into a campaign, ingestion progress, retries, source
videos and the candidate pipeline, a clip's place in its source (campaign admins)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clips import pipeline, services
from clips.models import MediaStatus
from clips.selectors import clip_origin
from clips.uploads import ClipSizeLimitHandler, SourceSizeLimitHandler
from labelstudio_ferv.errors import NotFound, PayloadTooLarge, ValidationError
from labelstudio_ferv.openapi import E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import intake
from .access import access_campaign
from .intake_serializers import (
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
from .models import Role

ERRORS = {
    400: error_response("Malformed request; every input rejected."),
    401: E401,
    403: error_response("Not an admin of this campaign."),
    404: error_response("No such campaign (or not a member)."),
}
CAMPAIGN_ID = path_id("campaign_id", "A campaign you administer (or review, for reads).")
CLIP_ID = path_id("clip_id", "A clip of the campaign.")
VIDEO_ID = path_id("video_id", "A source video imported into the campaign.")


class ClipUploadView(APIView):
    """Upload clips into a campaign; each file is accepted or rejected on its own."""

    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Before the body is parsed: oversized files are dropped as they arrive.
        request.upload_handlers.insert(0, ClipSizeLimitHandler(request))
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": UploadInput},
        parameters=[CAMPAIGN_ID],
        responses={201: UploadOutput, 200: UploadOutput, **ERRORS},
        summary="Upload clips",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN
        )
        files = request.FILES.getlist("files")  # parses the body
        body = intake.campaign_upload_clips(
            campaign=campaign,
            files=files,
            scenes=request.data.getlist("scene") if hasattr(request.data, "getlist") else [],
            oversized=getattr(request._request, "oversized_uploads", []),
        )
        code = status.HTTP_201_CREATED if body["created"] else status.HTTP_200_OK
        return Response(UploadOutput(body).data, status=code)


class IngestionView(APIView):
    """How a campaign's clips stand: counts by processing status and the latest failures."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: IngestionOutput, **ERRORS},
        summary="Ingestion progress",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        progress = intake.ingestion_progress(campaign_id=campaign_id)
        return Response(IngestionOutput(progress).data)


class IngestionRetryView(APIView):
    """Send failed clips back to be processed again."""

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        request=RetryInput,
        responses={200: RetryOutput, **ERRORS},
        summary="Retry",
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        data = RetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        clips = intake.campaign_clips(campaign_id=campaign_id)
        if "clip_ids" in data.validated_data:
            clips = clips.filter(pk__in=data.validated_data["clip_ids"])
        return Response({"retried": services.clips_retry_failed(clips=clips)})


class ClipDetailView(APIView):
    """One clip of a campaign with its processing status and error (reviewers and admins)."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, CLIP_ID],
        responses={200: ClipOutput, **ERRORS},
        summary="Clip status",
    )
    def get(self, request: Request, campaign_id: int, clip_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        clip = _campaign_clip(campaign_id, clip_id)
        return Response(ClipOutput(clip, context={"request": request}).data)


# ------------------------------------------------------------------------- source videos

VIDEO_404 = error_response("No such campaign or source video (or not a member).")
CONFLICT = error_response("The video is busy or belongs to another campaign.")


def _campaign_clip(campaign_id: int, clip_id: int):
    clip = intake.campaign_clips(campaign_id=campaign_id).select_related("scene")
    clip = clip.filter(pk=clip_id).first()
    if clip is None:
        raise NotFound("Clip not found.")
    return clip


def _video_detail(campaign_id: int, video_id: int) -> dict:
    detail = intake.campaign_source_video_detail(campaign_id=campaign_id, video_id=video_id)
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
            CAMPAIGN_ID,
            OpenApiParameter(
                "status", str, enum=list(MediaStatus.values), description="Only these videos."
            ),
        ],
        responses={200: SourceVideoOutput(many=True), **ERRORS},
        summary="List source videos",
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        wanted = request.query_params.get("status") or None
        if wanted is not None and wanted not in MediaStatus.values:
            raise ValidationError(f"status: one of {', '.join(MediaStatus.values)}")
        videos = intake.campaign_source_videos(campaign_id=campaign_id, status=wanted)
        return Response(SourceVideoOutput(videos, many=True, context={"request": request}).data)

    @extend_schema(
        request={"multipart/form-data": SourceVideoUploadInput},
        responses={
            201: SourceVideoUploadOutput,
            200: SourceVideoUploadOutput,
            409: CONFLICT,
            413: error_response("The file is over the size limit."),
            **ERRORS,
        },
        parameters=[CAMPAIGN_ID],
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
        video, created = intake.campaign_source_video_upload(
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
        parameters=[CAMPAIGN_ID, VIDEO_ID],
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

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID, VIDEO_ID],
        request=SourceVideoRetryInput,
        responses={200: SourceVideoDetailOutput, 409: CONFLICT, **ERRORS, 404: VIDEO_404},
        summary="Retry a source video",
    )
    def post(self, request: Request, campaign_id: int, video_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        data = SourceVideoRetryInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        video = intake.campaign_source_video(campaign_id=campaign_id, video_id=video_id)
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
        parameters=[CAMPAIGN_ID, CLIP_ID],
        responses={200: ClipOriginOutput, **ERRORS, 404: error_response(
            "No such campaign or clip, or the clip was not cut from a source video."
        )},
        summary="Clip origin",
    )  # fmt: skip
    def get(self, request: Request, campaign_id: int, clip_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
        origin = clip_origin(clip=_campaign_clip(campaign_id, clip_id))
        if origin is None:
            raise NotFound("This clip was not cut from a source video.")
        return Response(ClipOriginOutput(origin, context={"request": request}).data)
