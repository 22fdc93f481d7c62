"""Agreement statistics of a campaign: computed from arrays by a worker, stored, then served.

Alpha is Krippendorff's nominal alpha over the answers (PASS is one of the values: a clip some
annotators could label and others could not is a disagreement). Kappa is Fleiss' kappa over the
clips that have exactly the campaign's votes per clip, the one set where every unit has the same
number of ratings, as kappa requires.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from clips.lazy import lazy_module
from clips.models import Scenario, Scene
from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_KEYS, N_ANSWERS, PASS
from labelstudio_ferv.queue import enqueue_on_commit

from . import agreement, audit_sample, crowd_signals
from .loading import CampaignArrays, load_campaign
from .models import Campaign, CampaignStatistics, GoldBatch

np = lazy_module("numpy")


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def _alpha(counts: np.ndarray) -> float | None:
    try:
        return _finite(agreement.krippendorff_nominal_from_counts(counts))
    except ValueError:  # no clip with two answers yet
        return None


def alpha_per_group(data: CampaignArrays, counts: np.ndarray, key: np.ndarray) -> dict:
    """Return, per group id: alpha, the clips with two or more answers, and clips by status."""
    values = agreement.alpha_by_group(counts, key)
    pairable = counts.sum(axis=1) >= 2
    width = int(key.max(initial=0)) + 1
    sizes = np.bincount(key[pairable], minlength=width)
    by_status = np.bincount(
        key * len(agreement.STATUS_KEYS) + data.status, minlength=width * len(agreement.STATUS_KEYS)
    ).reshape(width, len(agreement.STATUS_KEYS))
    return {
        int(group): {
            "alpha": _finite(values.get(int(group), float("nan"))),
            "clips": int(sizes[group]),
            "status": dict(zip(agreement.STATUS_KEYS, by_status[group].tolist(), strict=True)),
        }
        for group in np.unique(key).tolist()
    }


# Batches by verdict, and those a reviewer rejected.
BATCH_KEYS = (*GoldBatch.Verdict.values, GoldBatch.Review.REJECTED.value)


def per_annotator(data: CampaignArrays, counts: np.ndarray, campaign_id: int) -> list[dict]:
    """Return each annotator's votes, agreement with the others, gold accuracy, PASS rate, time.

    Agreement with the others' majority: for each vote, the answer the other voters on that clip
    gave most (a strict leader among them); votes on clips where the others have no strict
    leader do not count.
    """
    if len(data.vote_task) == 0:
        return []
    others = counts[data.vote_task].copy()
    others[np.arange(len(others)), data.vote_answer] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    comparable = (top > 0) & unique_top
    agrees = comparable & (others.argmax(axis=1) == data.vote_answer)
    on_gold = data.is_gold[data.vote_task]
    gold_right = on_gold & (data.gold_label[data.vote_task] == data.vote_answer)
    users, user_idx = np.unique(data.vote_annotator, return_inverse=True)

    def per_user(mask: np.ndarray) -> np.ndarray:
        return np.bincount(user_idx, weights=mask.astype(float), minlength=len(users))

    votes = np.bincount(user_idx, minlength=len(users))
    comparable_n, agree_n = per_user(comparable), per_user(agrees)
    gold_n, gold_ok = per_user(on_gold), per_user(gold_right)
    pass_n = per_user(data.vote_answer == PASS)
    order = np.argsort(user_idx, kind="stable")
    splits = np.cumsum(votes)[:-1]
    times = np.split(data.vote_time_ms[order], splits)
    names = dict(
        get_user_model().objects.filter(pk__in=users.tolist()).values_list("pk", "username")
    )
    batches: dict[int, dict[str, int]] = {}
    for annotator_id, verdict, review, n in (
        GoldBatch.objects.filter(campaign_id=campaign_id)
        .values_list("annotator_id", "verdict", "review")
        .annotate(n=Count("id"))
        .order_by()
    ):
        row = batches.setdefault(annotator_id, {v: 0 for v in BATCH_KEYS})
        row[verdict] += n
        if review == GoldBatch.Review.REJECTED:
            row[GoldBatch.Review.REJECTED.value] += n
    rows = []
    for i, user_id in enumerate(users.tolist()):
        known = times[i][times[i] >= 0]
        rows.append(
            {
                "annotator_id": user_id,
                "username": names.get(user_id, ""),
                "batches": batches.get(user_id, {v: 0 for v in BATCH_KEYS}),
                "votes": int(votes[i]),
                "agreement": _finite(agree_n[i] / comparable_n[i]) if comparable_n[i] else None,
                "gold_answers": int(gold_n[i]),
                "gold_accuracy": _finite(gold_ok[i] / gold_n[i]) if gold_n[i] else None,
                "pass_rate": _finite(pass_n[i] / votes[i]),
                "median_time_ms": int(np.median(known)) if len(known) else None,
            }
        )
    return rows


def confusion(data: CampaignArrays) -> list[list[int]]:
    """Return final label (rows, 7 classes) x answer given (columns, 7 classes + PASS)."""
    final = data.label[data.vote_task]
    has = final >= 0
    flat = np.bincount(
        final[has] * N_ANSWERS + data.vote_answer[has], minlength=len(CLASS_KEYS) * N_ANSWERS
    )
    return flat.reshape(len(CLASS_KEYS), N_ANSWERS).tolist()


def compute(*, campaign: Campaign, data: CampaignArrays) -> dict:
    """Return every statistic of the campaign as JSON-ready data."""
    counts = data.counts()
    totals = counts.sum(axis=1)
    uniform = totals == campaign.votes_per_clip
    kappa = None
    if uniform.sum() >= 2 and campaign.votes_per_clip >= 2:
        kappa = _finite(agreement.fleiss_kappa(counts[uniform]))
    scenes = alpha_per_group(data, counts, data.scene_id)
    scenarios = alpha_per_group(data, counts, data.scenario_id)
    scene_names = dict(Scene.objects.values_list("id", "folder"))
    scenario_names = dict(Scenario.objects.values_list("id", "name"))
    trusted = data.label >= 0
    class_balance = np.bincount(data.label[trusted], minlength=len(CLASS_KEYS)).tolist()
    return {
        "clips": int(data.n_tasks),
        "votes": int(len(data.vote_answer)),
        "alpha": _alpha(counts),
        "fleiss_kappa": kappa,
        "fleiss_clips": int(uniform.sum()),
        "per_scenario": [
            {"scenario_id": k, "scenario": scenario_names.get(k, str(k)), **v}
            for k, v in sorted(scenarios.items())
        ],
        "per_scene": [
            {"scene_id": k, "scene": scene_names.get(k, str(k)), **v}
            for k, v in sorted(scenes.items())
        ],
        "per_class": dict(zip(CLASS_KEYS, class_balance, strict=True)),
        "answers": list(ANSWER_KEYS),
        "confusion": confusion(data),
        "annotators": per_annotator(data, counts, campaign.pk),
        "signals": crowd_signals.compute(data=data, campaign_id=campaign.pk),
        "audit": audit_sample.audit_precision(campaign_id=campaign.pk),
    }


def statistics_refresh(*, campaign_id: int) -> CampaignStatistics:
    """Recompute and store a campaign's statistics."""
    started = time.perf_counter()
    campaign = Campaign.objects.get(pk=campaign_id)
    data = compute(campaign=campaign, data=load_campaign(campaign_id=campaign_id))
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        stats, _ = CampaignStatistics.objects.update_or_create(
            campaign=campaign,
            defaults={"data": data, "computed_at": timezone.now(), "duration_ms": elapsed_ms},
        )
    return stats


# --------------------------------------------------------------------------------------------
# After review decisions


def statistics_refresh_on_commit(*, campaign_id: int, since: datetime) -> None:
    """Have the statistics refreshed shortly after a review decision commits."""
    # Unsent, the next decision or beat's campaign refresh catches the statistics up.
    enqueue_on_commit(
        "annotations.refresh_statistics_after_review", campaign_id, since.isoformat(), countdown=2
    )


def statistics_refresh_since(*, campaign_id: int, since: datetime) -> bool:
    """Refresh the campaign's statistics unless a refresh started after ``since``; say if run.

    A burst of decisions then costs one recompute, not one per decision.
    """
    stats = CampaignStatistics.objects.filter(campaign_id=campaign_id).first()
    if stats is not None:
        started = stats.computed_at - timedelta(milliseconds=stats.duration_ms)
        if started > since:
            return False
    if not Campaign.objects.filter(pk=campaign_id).exists():
        return False
    statistics_refresh(campaign_id=campaign_id)
    return True
