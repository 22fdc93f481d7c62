"""Campaign intake: clips and source videos entering a campaign, and how their media stands.

``clips`` stores and processes media and knows nothing of campaigns; this module puts what it
ingests into a campaign (one task per clip) and owns the campaign-to-source-video link
(``CampaignSourceVideo``). The candidate pipeline announces the clips it cuts
(``clips.signals.source_clips_cut``); ``source_clips_cut_received``, connected in
``AnnotationsConfig.ready``, adds them to the campaign the video feeds, in the clip's own
transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Count, F, QuerySet

from clips import pipeline
from clips import selectors as clip_selectors
from clips import services as clip_services
from clips.models import Clip, MediaStatus, Scene, SourceVideo
from clips.services import IngestResult
from labelstudio_ferv.errors import Conflict, ValidationError

from .models import Campaign, CampaignSourceVideo
from .services import campaign_add_clips

# --------------------------------------------------------------------------------------------
# Clips


def campaign_ingest(
    *, campaign: Campaign, items: list[tuple], reference_labels: bool = False
) -> list[IngestResult]:
    """Ingest several inputs (see ``clips.services.clips_ingest``) and add them to a campaign.

    One bad input never stops the others; clips already in the campaign are not added twice.
    """
    results = clip_services.clips_ingest(items=items, reference_labels=reference_labels)
    ids = list(dict.fromkeys(r.clip_id for r in results if r.clip_id is not None))
    if ids:
        found = Clip.objects.in_bulk(ids)
        campaign_add_clips(campaign=campaign, clips=[found[pk] for pk in ids if pk in found])
    return results


def campaign_upload_clips(
    *,
    campaign: Campaign,
    files: list[UploadedFile],
    scenes: list[str],
    oversized: Sequence[str] = (),
) -> dict[str, Any]:
    """Ingest uploaded clip files into a campaign; each file is accepted or rejected on its own.

    ``scenes`` gives one scene for all files or one per file (``oversized`` names files the
    upload handler dropped, counted in that order after ``files``). Return the counts
    (created, existing, rejected) and one result per file. Raise ValidationError for a request
    without files or with a wrong number of scenes, and when no file was accepted.
    """
    oversized = list(oversized)
    if not files and not oversized:
        raise ValidationError("files: send one or more clip files in the 'files' field")
    if not scenes or (len(scenes) != 1 and len(scenes) != len(files) + len(oversized)):
        raise ValidationError("scene: give one scene for all files, or one per file")
    scene_for = [scenes[0]] * len(files) if len(scenes) == 1 else scenes
    lookup = {name: clip_services.scene_lookup(name) for name in set(scene_for)}
    items = [(f.name, lookup[scene_for[i]], f) for i, f in enumerate(files)]
    results = campaign_ingest(campaign=campaign, items=items)
    limit_mib = settings.CLIP_MAX_UPLOAD_BYTES / 2**20
    results += [
        IngestResult(
            name=name, status="rejected",
            message=f"{name}: over the {limit_mib:.1f} MiB limit for one clip; not stored",
        )
        for name in oversized
    ]  # fmt: skip
    counts = Counter(r.status for r in results)
    body: dict[str, Any] = {key: counts[key] for key in ("created", "existing", "rejected")}
    body["results"] = [asdict(r) for r in results]
    if body["rejected"] == len(results):
        raise ValidationError(
            "No clip was accepted: " + "; ".join(r.message for r in results[:5]),
            details=body["results"],
        )
    return body


# --------------------------------------------------------------------------------------------
# Source videos


def campaign_source_video_import(
    *,
    campaign: Campaign,
    path: Path,
    scene: Scene,
    title: str = "",
    params: dict[str, Any] | None = None,
    created_by=None,
) -> tuple[SourceVideo, bool]:
    """Import a raw video into a campaign: its candidate clips become the campaign's tasks.

    Return ``(video, created)``. Importing a video again into the same campaign returns the
    existing row and starts nothing; a video no campaign owns is adopted. Raise
    ValidationError for a file that is not a readable video, Conflict when another campaign
    imported it.
    """
    # One transaction: the pipeline starts (after commit) only once the link exists, so even
    # an in-process run adds its clips to the campaign.
    with transaction.atomic():
        video, created = pipeline.source_video_create(
            path=path, scene=scene, title=title, params=params, created_by=created_by
        )
        if created:
            CampaignSourceVideo.objects.create(campaign=campaign, source_video=video)
            return video, True
    return _join_campaign(video, campaign, title=title or path.name), False


def campaign_source_video_upload(
    *,
    campaign: Campaign,
    upload: UploadedFile,
    scene: Scene,
    title: str = "",
    params: dict[str, Any] | None = None,
    created_by=None,
) -> tuple[SourceVideo, bool]:
    """Check an uploaded source video's size, then import it like a file on disk."""
    pipeline.source_video_check_upload(upload=upload)
    with clip_services.upload_path(upload) as path:
        return campaign_source_video_import(
            campaign=campaign,
            path=path,
            scene=scene,
            title=title or upload.name or "",
            params=params,
            created_by=created_by,
        )


def _join_campaign(video: SourceVideo, campaign: Campaign, *, title: str) -> SourceVideo:
    """Return an already imported video, adopting it if no campaign owns it.

    A video another campaign owns is refused in the caller's own words: nothing of the other
    campaign (its id, the video's id or the title it gave) is revealed.
    """
    link = CampaignSourceVideo.objects.filter(source_video=video).first()
    if link is not None and link.campaign_id == campaign.pk:
        return video
    if link is not None:
        raise Conflict(
            f"{title}: this video is already in the library, imported by another campaign; "
            "a video feeds one campaign"
        )
    with transaction.atomic():
        # Only an orphan (its campaign was deleted, or it predates the pipeline) is adopted;
        # the primary key on the video makes a concurrent adoption fail here.
        link, adopted = CampaignSourceVideo.objects.get_or_create(
            source_video=video, defaults={"campaign": campaign}
        )
        if not adopted and link.campaign_id != campaign.pk:
            raise Conflict(f"{title}: this video was just imported by another campaign")
        campaign_add_clips(
            campaign=campaign, clips=Clip.objects.filter(candidates__source_video=video)
        )
        pipeline.source_video_enqueue_pending(video_id=video.pk)
    return video


def source_clips_cut_received(sender, *, source_video_id: int, clip_ids: list[int], **kwargs):
    """Add clips the pipeline cut to the campaign their source video feeds (if any)."""
    link = (
        CampaignSourceVideo.objects.select_related("campaign")
        .filter(source_video_id=source_video_id)
        .first()
    )
    if link is not None:
        clips = Clip.objects.filter(pk__in=clip_ids).order_by("pk")
        campaign_add_clips(campaign=link.campaign, clips=clips)


# --------------------------------------------------------------------------------------------
# Reads


def campaign_clips(*, campaign_id: int) -> QuerySet[Clip]:
    """Return the clips of a campaign."""
    return Clip.objects.filter(tasks__campaign_id=campaign_id)


def ingestion_progress(*, campaign_id: int, failure_limit: int = 100) -> dict:
    """Return a campaign's clips counted by status, and its latest failures with their reasons."""
    counts = {status: 0 for status in MediaStatus.values}
    rows = campaign_clips(campaign_id=campaign_id).values("status").annotate(n=Count("id"))
    for row in rows.order_by():
        counts[row["status"]] = row["n"]
    failures = (
        campaign_clips(campaign_id=campaign_id)
        .filter(status=MediaStatus.FAILED)
        .order_by("-updated_at")
        .values("id", "name", "error", "updated_at")[:failure_limit]
    )
    return {
        "total": sum(counts.values()),
        **counts,
        "failures": [
            {
                "clip_id": f["id"],
                "name": f["name"],
                "error": f["error"],
                "updated_at": f["updated_at"],
            }
            for f in failures
        ],
    }


def campaign_source_videos(*, campaign_id: int, status: str | None = None) -> QuerySet:
    """Return the source videos imported into a campaign, without their stage outputs."""
    videos = (
        SourceVideo.objects.filter(campaign_link__campaign_id=campaign_id)
        .annotate(campaign_id=F("campaign_link__campaign_id"))
        .select_related("scene")
        .defer(*clip_selectors.HEAVY_FIELDS)
        .order_by("pk")
    )
    return videos.filter(status=status) if status else videos


def campaign_source_video(*, campaign_id: int, video_id: int) -> SourceVideo | None:
    """Return a source video of a campaign (all its fields), or None."""
    return (
        SourceVideo.objects.filter(campaign_link__campaign_id=campaign_id, pk=video_id)
        .annotate(campaign_id=F("campaign_link__campaign_id"))
        .first()
    )


def campaign_source_video_detail(*, campaign_id: int, video_id: int) -> dict | None:
    """Return one source video of a campaign with its shots, tracks and candidates, or None."""
    video = (
        SourceVideo.objects.filter(campaign_link__campaign_id=campaign_id, pk=video_id)
        .annotate(campaign_id=F("campaign_link__campaign_id"))
        .select_related("scene")
        .defer("scan", "plan")
        .first()
    )
    return None if video is None else clip_selectors.source_video_detail(video=video)
