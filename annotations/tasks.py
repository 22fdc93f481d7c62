"""Celery tasks for annotations: thin wrappers that take ids and call services."""

from celery import shared_task

from . import consensus, history, statistics
from .models import Campaign, CampaignStatistics, Vote


@shared_task(name="annotations.update_consensus", acks_late=True)
def update_consensus(task_id: int) -> int:
    """Bring a voted task's consensus up to date, with other stale ones (idempotent)."""
    return consensus.consensus_catch_up(task_id=task_id)


@shared_task(name="annotations.update_consensus_stale", acks_late=True)
def update_consensus_stale(task_ids: list[int] | None = None) -> int:
    """Bring the consensus of the tasks voted on since the last such message up to date (the
    ids wait in Redis, or come with the message when tasks run eagerly). Tasks another
    transaction holds are handed back, to a message a moment later."""
    from labelstudio_ferv.queue import pending_taken, send_once

    ids = sorted(set(task_ids or []) | set(pending_taken("annotations.update_consensus_stale")))
    done, busy = consensus.consensus_update_many(task_ids=ids)
    if busy and update_consensus_stale.app.conf.task_always_eager:
        # Run in the caller's process: nothing would run a later message meanwhile.
        done += consensus.consensus_update_many(task_ids=busy, wait=True)[0]
    elif busy:
        send_once("annotations.update_consensus_stale", *busy, countdown=0.2)
    return done


@shared_task(name="annotations.sweep_consensus")
def sweep_consensus() -> int:
    """Catch up tasks whose per-vote consensus message never ran (run by beat)."""
    return consensus.consensus_sweep()


@shared_task(name="annotations.recompute_campaign", acks_late=True, time_limit=1800)
def recompute_campaign(campaign_id: int) -> int:
    """Recompute every task's consensus of a campaign, then its statistics."""
    if not Campaign.objects.filter(pk=campaign_id).exists():
        return 0
    changed = consensus.campaign_recompute(campaign_id=campaign_id)
    statistics.statistics_refresh(campaign_id=campaign_id)
    return changed


@shared_task(name="annotations.refresh_statistics", acks_late=True)
def refresh_statistics(campaign_id: int) -> None:
    """Recompute and store one campaign's agreement statistics."""
    if Campaign.objects.filter(pk=campaign_id).exists():
        statistics.statistics_refresh(campaign_id=campaign_id)


@shared_task(name="annotations.refresh_active_campaigns")
def refresh_active_campaigns() -> int:
    """Recompute the campaigns that got votes since their statistics were computed (beat).

    A recompute brings every clip's Dawid-Skene label up to date (which a Dawid-Skene campaign
    decides by, and reviewers compare in any campaign), then the statistics. Return how many.
    """
    from .batches import batches_close_idle

    # Annotators idle for a while: their last, partial batch is scored too.
    batches_close_idle()
    stamps = dict(CampaignStatistics.objects.values_list("campaign_id", "computed_at"))
    count = 0
    for campaign_id in Campaign.objects.values_list("pk", flat=True):
        since = stamps.get(campaign_id)
        votes = Vote.objects.filter(campaign_id=campaign_id)
        if since is not None:
            votes = votes.filter(updated_at__gt=since)
        if votes.exists():
            recompute_campaign.delay(campaign_id)
            count += 1
    return count


@shared_task(name="annotations.refit_trust_models")
def refit_trust_models() -> int:
    """Recompute the confidence campaigns whose valid votes grew well past their last fit
    (beat, every 30 s): the per-vote path then decides with a model that knows the crowd."""
    due = consensus.campaigns_due_refit()
    for campaign_id in due:
        recompute_campaign.delay(campaign_id)
    return len(due)


@shared_task(name="annotations.roll_up_vote_hours")
def roll_up_vote_hours() -> int:
    """Roll every campaign's votes of the hours just ended into the per-hour summary that the
    progress history reads (beat, every 5 minutes); return the rows written. A campaign with
    nothing new costs one lookup of its mark."""
    return sum(
        history.votes_roll_up(campaign_id=campaign_id)
        for campaign_id in Campaign.objects.values_list("pk", flat=True)
    )


# Review and exports -----------------------------------------------------------------------------


@shared_task(name="annotations.refresh_statistics_after_review", acks_late=True)
def refresh_statistics_after_review(campaign_id: int, since: str) -> bool:
    """Refresh a campaign's statistics after a review decision, unless a later refresh did."""
    from datetime import datetime

    return statistics.statistics_refresh_since(
        campaign_id=campaign_id, since=datetime.fromisoformat(since)
    )


@shared_task(
    name="annotations.run_export",
    acks_late=True,
    time_limit=6 * 3600,
    soft_time_limit=6 * 3600 - 60,
)
def run_export(job_id: int) -> str | None:
    """Write an export job's file (idempotent: a job done stays done, see REVIEW.md).

    When another run holds the job with a fresh heartbeat (this message was redelivered while
    it still runs), check again later: if that run's worker dies, this takes the job over.
    """
    from . import exports

    result = exports.export_run(job_id=job_id)
    if result == exports.BUSY:
        if not run_export.app.conf.task_always_eager:
            run_export.apply_async((job_id,), countdown=exports.STALE_AFTER_S)
        return exports.BUSY
    return None if result is None else result.status
