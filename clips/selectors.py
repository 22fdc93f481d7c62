"""Read paths for clips and source videos (campaign-scoped reads are in annotations.intake)."""

from .models import Candidate, Clip, SourceVideo

# Stage outputs can be large (a scan is about 27 KiB per minute of video): lists leave them out.
HEAVY_FIELDS = ("scan", "shots", "tracks", "plan")


def source_video_detail(*, video: SourceVideo) -> dict:
    """Return a source video with its shots, tracks and candidates (``scan`` and ``plan`` may
    be deferred)."""
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
        .defer(*HEAVY_FIELDS)
        .first()
    )
    if video is None:
        return None
    candidate = Candidate.objects.filter(clip=clip, source_video=video).order_by("pk").first()
    return {"clip": clip, "video": video, "candidate": candidate}
