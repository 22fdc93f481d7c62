"""Read paths for clips."""

from django.db.models import Count, QuerySet

from .models import Clip, MediaStatus


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
