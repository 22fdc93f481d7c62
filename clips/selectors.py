"""Read paths for clips."""

from django.db.models import Count, QuerySet

from .models import Candidate, Clip, MediaStatus, SourceVideo


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


# Stage outputs can be large (a scan is about 27 KiB per minute of video): lists leave them out.
_HEAVY = ("scan", "shots", "tracks", "plan")


def campaign_source_videos(*, campaign_id: int, status: str | None = None) -> QuerySet:
    """Return the source videos imported into a campaign, without their stage outputs."""
    videos = (
        SourceVideo.objects.filter(campaign_id=campaign_id)
        .select_related("scene")
        .defer(*_HEAVY)
        .order_by("pk")
    )
    return videos.filter(status=status) if status else videos


def source_video_detail(*, campaign_id: int, video_id: int) -> dict | None:
    """Return one source video of a campaign with its shots, tracks and candidates, or None."""
    video = (
        SourceVideo.objects.filter(campaign_id=campaign_id, pk=video_id)
        .select_related("scene")
        .defer("scan", "plan")
        .first()
    )
    if video is None:
        return None
    rows = (
        Candidate.objects.filter(source_video=video)
        .select_related("clip")
        .defer("boxes", "clip__reference_label")
        .order_by("start_frame", "track_id", "piece")
    )
    tracks = [
        {k: t[k] for k in ("track_id", "shot_index", "start_frame", "end_frame", "hits")}
        for t in video.tracks or []
    ]
    return {
        "video": video,
        "shots": video.shots or [],
        "tracks": tracks,
        "candidates": [
            {
                "id": row.pk,
                "clip_id": row.clip_id,
                "clip_status": row.clip.status if row.clip else None,
                "track_id": row.track_id,
                "piece": row.piece,
                "shot_index": row.shot_index,
                "start_frame": row.start_frame,
                "end_frame": row.end_frame,
                "start_s": row.start_s,
                "end_s": row.end_s,
                "crop": row.crop,
                "error": row.error,
            }
            for row in rows
        ],
    }


def clip_origin(*, clip: Clip) -> dict | None:
    """Return where a clip was cut from (video, time span, per-frame face boxes), or None."""
    video = (
        SourceVideo.objects.filter(pk=clip.source_video_id)
        .select_related("scene")
        .defer(*_HEAVY)
        .first()
    )
    if video is None:
        return None
    candidate = Candidate.objects.filter(clip=clip, source_video=video).order_by("pk").first()
    return {"clip": clip, "video": video, "candidate": candidate}
