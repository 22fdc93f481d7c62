"""Per-clip consensus: turn a task's valid votes into counts, status, label and agreement.

The rule itself is ``agreement.decide`` (see AGGREGATION.md); this module applies it to one task
after each committed vote (incremental path) and to a whole campaign at once (recompute), so both
paths give the same result by construction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Now
from django.utils import timezone

from clips.lazy import lazy_module
from labelstudio_ferv.expressions import N_ANSWERS, N_CLASSES
from labelstudio_ferv.queue import enqueue_once_on_commit

from . import agreement
from .loading import CampaignArrays, load_campaign
from .models import AnnotatorModel, Campaign, ConsensusStatus, Membership, Role, Task, TrustModel
from .statements import consensus_write, gold_queues_reset

np = lazy_module("numpy")

logger = logging.getLogger(__name__)


def _db_ago(seconds: float) -> ExpressionWrapper:
    """The database's clock ``seconds`` ago: the clock that stamps ``Task.updated_at``."""
    return ExpressionWrapper(Now() - timedelta(seconds=seconds), output_field=DateTimeField())


def consensus_enqueue(*, task_id: int) -> None:
    """Have a task's consensus recomputed once the current transaction commits.

    The task is marked stale (and its ``vote_seq`` bumped) in the same transaction as the vote,
    so that if the broker is down (or the message is lost) ``consensus_sweep``, run by beat,
    still catches it up: a committed vote never goes uncounted.
    """
    # Stamped by the database's clock: the sweep, in another process on another machine,
    # compares it with the same clock.
    Task.objects.filter(pk=task_id).update(
        consensus_stale=True, vote_seq=F("vote_seq") + 1, updated_at=Now()
    )
    consensus_message(task_id=task_id)


def consensus_message(*, task_id: int) -> None:
    """Have the consensus of a task this transaction marked stale brought up to date.

    One message does for every vote committed before the worker takes it: the task's id waits
    in Redis with the others' (``consensus_update_many``), so a vote sends a message only when
    none is waiting. The message runs ``CONSENSUS_BATCH_DELAY_MS`` after the first vote, so that
    at an ordinary pace one message still does for many votes (its fixed cost per message is
    most of the worker's). Lost or unsent, the message is caught up by the sweep: the task is
    marked stale.
    """
    enqueue_once_on_commit(
        "annotations.update_consensus_stale",
        task_id,
        countdown=settings.CONSENSUS_BATCH_DELAY_MS / 1000 or None,
    )


def valid_counts(*, task_id: int) -> list[int]:
    """Return the task's valid votes per answer, indexed like ``Answer``."""
    counts = [0] * N_ANSWERS
    with connection.cursor() as cursor:
        cursor.execute(_TASK_COUNTS.format(ids="%s"), [task_id])
        for _, answer, n in cursor.fetchall():
            counts[answer] = n
    return counts


def consensus_update(*, task_id: int) -> Task | None:
    """Recompute one task's consensus from its valid votes; return the task, or None if gone.

    Unlike the per-vote message, this always recomputes (stale or not): callers use it to
    see the consensus a decision leaves.
    """
    with transaction.atomic():
        if not Task.objects.select_for_update(of=("self",)).filter(pk=task_id).exists():
            return None
        _update_locked([task_id])
    _close_full_batches([task_id])
    return Task.objects.filter(pk=task_id).first()


# A message whose task was marked longer ago than this finds the worker behind: it takes the
# other stale tasks too (see consensus_catch_up).
_BEHIND_AFTER_S = 0.25


def consensus_catch_up(*, task_id: int, limit: int = 500) -> int:
    """Bring a voted task's consensus up to date, and every other stale task with it.

    Run by the message each committed vote sends; returns how many tasks it updated.
    Idempotent and order-free: the result depends only on the votes committed when it runs.
    The message's own task is locked, waiting for a vote still storing on it, and done if
    stale. When the worker is behind (its own task was marked more than ``_BEHIND_AFTER_S``
    ago, or was already done by another message), up to ``limit`` other stale tasks are taken
    in the same bulk update, skipping those another worker holds. So the first message a
    lagging worker takes brings every committed vote into its clip's consensus: when messages
    queue up, the consensus does not wait for them (their own tasks are done by then, and they
    cost a query or two each). A worker that keeps up does one task per message.
    """
    with transaction.atomic():
        # By primary key alone: with "consensus_stale" in the WHERE clause the planner may walk
        # the whole task_stale index instead.
        own = list(
            Task.objects.select_for_update(of=("self",))
            .filter(pk=task_id)
            .annotate(fresh=Q(updated_at__gt=_db_ago(_BEHIND_AFTER_S)))
            .values_list("pk", "fresh", "consensus_stale")
        )
        own = [(pk, fresh) for pk, fresh, stale in own if stale]
        ids = [pk for pk, _ in own]
        # A fresh vote on its own task: the worker keeps up, the others have messages coming.
        keeping_up = own and own[0][1]
        if not keeping_up:
            ids += list(
                Task.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(consensus_stale=True)
                .exclude(pk=task_id)
                .order_by("updated_at")
                .values_list("pk", flat=True)[: max(limit - len(ids), 0)]
            )
        if not ids:
            return 0
        _update_locked(ids)
    _close_full_batches(ids)
    return len(ids)


def consensus_sweep(*, older_than_s: float = 10.0, limit: int = 5000) -> int:
    """Recompute tasks still marked stale a while after their vote; return how many.

    Normally the per-vote task has already done it; this catches votes whose message never
    reached a worker (broker down, worker lost), with no manual step.
    """
    cutoff = _db_ago(older_than_s)
    done = 0
    while done < limit:
        with transaction.atomic():
            ids = list(
                Task.objects.select_for_update(of=("self",), skip_locked=True)
                .filter(consensus_stale=True, updated_at__lt=cutoff)
                .order_by("updated_at")
                .values_list("pk", flat=True)[: min(500, limit - done)]
            )
            if not ids:
                break
            _update_locked(ids)
        _close_full_batches(ids)
        done += len(ids)
    return done


def consensus_update_many(
    *, task_ids: list[int], chunk: int = 500, wait: bool = False
) -> tuple[int, list[int]]:
    """Recompute the consensus of those of these tasks still stale, ``chunk`` per transaction.

    Return how many were recomputed and the ids of the tasks another transaction held (skipped,
    for the caller to hand back; with ``wait``, their locks are waited for instead). Rows are
    found by primary key: a scan of the stale tasks would walk every entry the votes left in
    the ``task_stale`` index since the last vacuum.
    """
    done, busy = 0, []
    for start in range(0, len(task_ids), chunk):
        part = task_ids[start : start + chunk]
        with transaction.atomic():
            rows = list(
                Task.objects.select_for_update(of=("self",), skip_locked=not wait)
                .filter(pk__in=part)
                .order_by("pk")
                .values_list("pk", "consensus_stale")
            )
            got = {pk for pk, _ in rows}
            if missing := [pk for pk in part if pk not in got]:
                # Held by another transaction, or deleted since (nothing to do for those).
                busy += list(Task.objects.filter(pk__in=missing).values_list("pk", flat=True))
            ids = [pk for pk, stale in rows if stale]
            if ids:
                _update_locked(ids)
        if ids:
            _close_full_batches(ids)
        done += len(ids)
    return done, busy


# The tasks to recompute with their campaign's rule, then their valid votes per answer: two
# plain queries (this runs once per vote; the ORM would spend more time building them).
_TASK_STATE = """
SELECT t.id, t.extra_votes, t.status, t.label, t.votes_needed, t.review_locked, t.is_gold,
       t.ds_label, t.ds_confidence, t.vote_seq, c.votes_per_clip, c.max_votes, c.min_agreement,
       c.aggregation, c.target_precision, c.id
FROM annotations_task t JOIN annotations_campaign c ON c.id = t.campaign_id
WHERE t.id IN ({ids})
ORDER BY t.id
"""
_TASK_COUNTS = """
SELECT task_id, answer, count(*) FROM annotations_vote
WHERE task_id IN ({ids}) AND is_valid
GROUP BY task_id, answer
"""
# The valid votes themselves (a few per task) with their clip's scene: the confidence rule
# weighs each by its voter and the scene's difficulty.
_TASK_VOTES = """
SELECT v.task_id, v.annotator_id, v.answer, c.scene_id
FROM annotations_vote v
JOIN annotations_task t ON t.id = v.task_id
JOIN clips_clip c ON c.id = t.clip_id
WHERE v.task_id IN ({ids}) AND v.is_valid
"""


@dataclass(frozen=True)
class _Rule:
    """The part of a campaign the trust rule reads (as ``_decide_by_extra`` takes it)."""

    votes_per_clip: int
    max_votes: int
    min_agreement: float


def _update_locked(task_ids: list[int]) -> None:
    """Recompute the consensus of tasks whose rows this transaction holds locked, in bulk."""
    marks = ", ".join(["%s"] * len(task_ids))
    with connection.cursor() as cursor:
        cursor.execute(_TASK_STATE.format(ids=marks), task_ids)
        rows = cursor.fetchall()
        cursor.execute(_TASK_VOTES.format(ids=marks), task_ids)
        voted = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 4)
    if not rows:
        return
    index = {row[0]: i for i, row in enumerate(rows)}
    vote_row = np.array([index[t] for t in voted[:, 0].tolist()], dtype=np.int64)
    counts = np.zeros((len(rows), N_ANSWERS), dtype=np.int64)
    np.add.at(counts, (vote_row, voted[:, 2]), 1)
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        confidence = row[13] == Campaign.Aggregation.CONFIDENCE
        key = (_Rule(*row[10:13]), row[15] if confidence else None, row[14])
        groups.setdefault(key, []).append(i)
    out = []
    for (rule, confidence_campaign, target), members in groups.items():
        pick = np.array(members)
        extra = np.array([rows[i][1] for i in members], dtype=np.int64)
        status, label, share, needed = _decide_by_extra(rule, counts[pick], extra)
        ds = [(rows[i][7], rows[i][8]) for i in members]
        if confidence_campaign is not None:
            mine = np.isin(vote_row, pick)
            local = np.searchsorted(pick, vote_row[mine])  # pick is sorted (rows are by id)
            model = model_load(
                campaign_id=confidence_campaign, annotators=np.unique(voted[mine, 1])
            )
            status, label, post_conf, needed, top = confidence_decide(
                model, local, voted[mine, 1], voted[mine, 2], counts[pick].sum(axis=1),
                rule.votes_per_clip + extra, rule.max_votes + extra, target,
                vote_scene=voted[mine, 3],
            )  # fmt: skip
            ds = [
                (int(t) if t < N_CLASSES else None, float(c))
                for t, c in zip(top.tolist(), post_conf.tolist(), strict=True)
            ]
        for j, i in enumerate(members):
            pk, _, old_status, old_label, old_needed, locked, gold, _, _, seq = rows[i][:10]
            # A reviewer's decision always wins, and gold clips keep their reference label.
            if old_status == ConsensusStatus.ADJUDICATED or locked or gold:
                new = (old_status, old_label, old_needed)
            else:
                new = (
                    agreement.Status(int(status[j])).key,
                    int(label[j]) if label[j] >= 0 else None,
                    int(needed[j]),
                )
            out.append(
                (pk, json.dumps(counts[i].tolist()), int(counts[i].sum()), new[0], new[1],
                 float(share[j]), new[2], ds[j][0], ds[j][1], seq)
            )  # fmt: skip
    consensus_write(out)
    _retire_worn_gold([row[0] for row in rows if row[6]])


def _retire_worn_gold(gold_ids: list[int]) -> int:
    """Retire the gold clips answered by ``gold_max_answers`` annotators and replace each one.

    The replacement is a trusted clip of the same class whose votes were unanimous (at least
    ``votes_per_clip`` of them), most votes first; it becomes gold with its label as reference.
    Rows another transaction holds are skipped (a later vote finds the next one). Return how
    many gold clips were retired.
    """
    if not gold_ids:
        return 0
    worn = list(
        Task.objects.filter(
            pk__in=gold_ids, is_gold=True, gold_retired=False, campaign__gold_max_answers__gt=0
        )
        .annotate(answers=Count("votes"))
        .filter(answers__gte=F("campaign__gold_max_answers"))
        .values_list("pk", "campaign_id", "gold_label", "campaign__votes_per_clip")
    )
    for pk, campaign_id, gold_label, votes_per_clip in worn:
        Task.objects.filter(pk=pk).update(gold_retired=True, updated_at=timezone.now())
        candidates = (
            Task.objects.select_for_update(skip_locked=True)
            .filter(
                campaign_id=campaign_id, status=ConsensusStatus.TRUSTED, label=gold_label,
                is_gold=False, review_locked=False, vote_count__gte=votes_per_clip,
            )
            .order_by("-vote_count", "id")
            .values_list("pk", "counts", "vote_count")[:50]
        )  # fmt: skip
        for candidate, counts, total in candidates:
            if counts[gold_label] == total:
                Task.objects.filter(pk=candidate).update(is_gold=True, gold_label=gold_label)
                gold_queues_reset(campaign_id=campaign_id)
                break
        logger.info("gold task %s retired after its answers", pk)
    return len(worn)


# The voters of some tasks who have a full batch of unbatched votes waiting: the voters come
# through the task index, then each one's unbatched votes are counted in ``vote_unbatched``.
# (Written so that no plan can start from every unbatched vote, even on stale statistics.)
_FULL_BATCHES = """
SELECT w.campaign_id, w.annotator_id
FROM (SELECT DISTINCT campaign_id, annotator_id
      FROM annotations_vote WHERE task_id IN ({ids})) AS w
JOIN annotations_campaign c ON c.id = w.campaign_id
WHERE (SELECT count(*) FROM annotations_vote v
       WHERE v.campaign_id = w.campaign_id AND v.annotator_id = w.annotator_id
         AND v.batch_id IS NULL) >= c.batch_size
"""


# The voters of some tasks whose vote there is recent (not yet in a batch) and who either just
# answered a gold clip (their gold evidence changed) or are paused (a vote sent after the pause,
# to a clip they still held): see batches.quality_check.
_CHECK_VOTERS = """
SELECT DISTINCT v.campaign_id, v.annotator_id
FROM annotations_vote v
JOIN annotations_task t ON t.id = v.task_id
JOIN annotations_membership m ON m.campaign_id = v.campaign_id AND m.user_id = v.annotator_id
WHERE v.task_id IN ({ids}) AND v.batch_id IS NULL AND (t.is_gold OR m.paused_at IS NOT NULL)
"""


def _close_full_batches(task_ids: list[int]) -> None:
    """Close the gold batches that the voters of these tasks have filled, and check the
    quality of those who just answered a gold clip (see batches.py)."""
    from .batches import batches_close, quality_check

    if not task_ids:
        return
    marks = ", ".join(["%s"] * len(task_ids))
    with connection.cursor() as cursor:
        cursor.execute(_CHECK_VOTERS.format(ids=marks), task_ids)
        to_check = cursor.fetchall()
        cursor.execute(_FULL_BATCHES.format(ids=marks), task_ids)
        full = cursor.fetchall()
    for campaign_id, annotator_id in to_check:
        quality_check(campaign_id=campaign_id, annotator_id=annotator_id)
    for campaign_id, annotator_id in full:
        batches_close(campaign_id=campaign_id, annotator_id=annotator_id)


# ---------------------------------------------------------------------------------------------
# Whole-campaign recompute
# ---------------------------------------------------------------------------------------------


#: The confidence rule's modelling choices (see AGGREGATION.md, "The model").
TRUST_SETTINGS = agreement.TrustSettings()


@dataclass
class FittedModel:
    """The confidence rule's model of a campaign: the state prior, each annotator's confusion
    (K x K over the classes and PASS; annotators not in ``confusion`` are newcomers and get
    ``newcomer``) and each scene's shift of the log-odds of a right answer (0 if unknown)."""

    priors: np.ndarray
    confusion: dict[int, np.ndarray]
    newcomer: np.ndarray | None = None
    scene_shift: dict[int, float] | None = None

    def __post_init__(self) -> None:
        if self.newcomer is None:
            self.newcomer = _newcomer_confusion()

    def stack(self, annotators: np.ndarray) -> np.ndarray:
        """Return the confusions of these annotators (W x K x K), newcomers given the prior."""
        if not len(annotators):
            return np.zeros((0, N_ANSWERS, N_ANSWERS))
        return np.stack([self.confusion.get(int(a), self.newcomer) for a in annotators.tolist()])

    def shifts(self, scenes: np.ndarray | None) -> np.ndarray | None:
        """Each vote's scene term (0 for a scene the fit has not seen)."""
        if scenes is None or not self.scene_shift:
            return None
        known = np.array(sorted(self.scene_shift), dtype=np.int64)
        values = np.array([self.scene_shift[int(s)] for s in known.tolist()])
        scenes = np.asarray(scenes, dtype=np.int64)
        at = np.clip(np.searchsorted(known, scenes), 0, len(known) - 1)
        return np.where(known[at] == scenes, values[at], 0.0)


def _newcomer_confusion() -> np.ndarray:
    return TRUST_SETTINGS.newcomer(N_ANSWERS)


def model_load(*, campaign_id: int, annotators: np.ndarray | None = None) -> FittedModel:
    """Return the campaign's stored model (the defaults before its first recompute)."""
    rows = AnnotatorModel.objects.filter(campaign_id=campaign_id)
    if annotators is not None:
        rows = rows.filter(annotator_id__in=[int(a) for a in annotators.tolist()])
    priors = TrustModel.objects.filter(campaign_id=campaign_id).values_list(
        "priors", "newcomer", "scene_shift"
    )
    stored, newcomer, shift = next(iter(priors), (None, None, None))
    return FittedModel(
        priors=np.array(stored) if stored else agreement.default_priors(N_ANSWERS),
        confusion={a: np.array(c) for a, c in rows.values_list("annotator_id", "confusion")},
        newcomer=np.array(newcomer) if newcomer else None,
        scene_shift={int(k): float(v) for k, v in (shift or {}).items()},
    )


def confidence_decide(
    model: FittedModel,
    vote_task: np.ndarray,
    vote_annotator: np.ndarray,
    vote_answer: np.ndarray,
    total: np.ndarray,
    needed: np.ndarray,
    cap: np.ndarray,
    target: float,
    vote_scene: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The confidence rule on some tasks, the same for one vote and for a recompute.

    Return ``(status, label, confidence, votes_needed, top state)``. A clip that even a
    unanimous remainder of votes up to its cap, for whichever state, could not settle goes to
    review at once (``agreement.decide_confident``, with ``TRUST_SETTINGS.stop_margin``).
    """
    annotators, worker = np.unique(vote_annotator, return_inverse=True)
    joint = agreement.tempered_log_joint(
        vote_task, worker.reshape(-1), vote_answer, len(total), model.stack(annotators),
        model.priors, TRUST_SETTINGS.temper, model.shifts(vote_scene),
    )  # fmt: skip
    status, label, conf, votes_needed = agreement.decide_confident(
        joint, total, needed, cap, target, model.newcomer, TRUST_SETTINGS.temper,
        TRUST_SETTINGS.stop_margin,
    )  # fmt: skip
    top = joint.argmax(axis=1) if len(joint) else np.zeros(0, dtype=np.int64)
    # Rounded: the two paths sum a clip's votes in different orders, which moves the last bits.
    return status, label, np.round(conf, 9), votes_needed, top


def clip_settleable(
    model: FittedModel, *, annotators, answers, scene: int, cap: int, target: float
) -> bool:
    """Whether a clip with these valid votes (voters and answers, in its scene) could still
    settle under ``model``: some state reaches ``target`` now, or would if every vote left up
    to ``cap`` named it, each from a newcomer. The unsettleable stop's own test, without its
    margin: ``make bench-trust`` counts with it the votes given to clips that could not settle.
    """
    annotators = np.asarray(annotators, dtype=np.int64)
    voters, worker = np.unique(annotators, return_inverse=True)
    joint = agreement.tempered_log_joint(
        np.zeros(len(annotators), dtype=np.int64), worker.reshape(-1),
        np.asarray(answers, dtype=np.int64), 1, model.stack(voters), model.priors,
        TRUST_SETTINGS.temper, model.shifts(np.full(len(annotators), scene)),
    )  # fmt: skip
    more = max(0, cap - len(annotators))
    best = agreement.best_reachable(joint, more, model.newcomer, TRUST_SETTINGS.temper)
    return bool(best[0] + 1e-9 >= target)


def model_fit(*, data: CampaignArrays) -> FittedModel:
    """Fit the confidence rule's model on a campaign's valid votes and gold (Dawid-Skene over
    the 7 classes and PASS, each annotator's confusion starting from the newcomer prior)."""
    annotators, worker = np.unique(data.vote_annotator, return_inverse=True)
    if not len(annotators):
        return FittedModel(priors=agreement.default_priors(N_ANSWERS), confusion={})
    gold = np.where(data.is_gold, data.gold_label, -1)
    scenes, clip_scene = np.unique(data.scene_id, return_inverse=True)
    fit = agreement.TrustModelArrays.fit(
        data.vote_task, worker.reshape(-1), data.vote_answer, data.n_tasks, len(annotators),
        gold, TRUST_SETTINGS, N_ANSWERS, clip_group=clip_scene.reshape(-1),
        n_groups=len(scenes),
    )  # fmt: skip
    shift = None
    if fit.group_shift is not None:
        shift = {int(s): float(v) for s, v in zip(scenes.tolist(), fit.group_shift.tolist(),
                                                   strict=True)}  # fmt: skip
    return FittedModel(
        priors=fit.priors,
        confusion={int(a): fit.confusion[w] for w, a in enumerate(annotators.tolist())},
        newcomer=fit.newcomer,
        scene_shift=shift,
    )


def model_store(*, campaign_id: int, model: FittedModel, votes: dict[int, int], changes: int):
    """Store a fitted model and what its recompute changed."""
    with transaction.atomic():
        trust, _ = TrustModel.objects.select_for_update().get_or_create(campaign_id=campaign_id)
        trust.priors = model.priors.tolist()
        trust.newcomer = np.asarray(model.newcomer).tolist()
        trust.scene_shift = {str(k): v for k, v in (model.scene_shift or {}).items()}
        trust.votes_at_fit = sum(votes.values())
        trust.fitted_at = timezone.now()
        trust.recomputes += 1
        trust.last_changes = changes
        trust.total_changes += changes
        trust.save()
        AnnotatorModel.objects.filter(campaign_id=campaign_id).delete()
        AnnotatorModel.objects.bulk_create(
            [
                AnnotatorModel(
                    campaign_id=campaign_id, annotator_id=a, confusion=c.tolist(),
                    votes=votes.get(a, 0),
                )
                for a, c in model.confusion.items()
            ]
        )  # fmt: skip
        members_rate(campaign_id=campaign_id, model=model)


def members_rate(*, campaign_id: int, model: FittedModel) -> None:
    """Rate the campaign's annotators with ``model`` (``Membership.informative``): informative
    when their estimated accuracy (``agreement.voter_accuracy``; a member without fitted votes
    has the newcomer's) is in the top third of the working annotators' (not paused, with
    fitted votes; ``agreement.informative_voters``). The claim gives extra votes to informative
    members first."""
    members = list(
        Membership.objects.filter(campaign_id=campaign_id, role=Role.ANNOTATOR).values_list(
            "pk", "user_id", "paused_at", "informative"
        )
    )
    if not members:
        return
    users = np.array([user for _, user, *_ in members], dtype=np.int64)
    accuracy = agreement.voter_accuracy(model.priors, model.stack(users))
    working = np.array(
        [paused is None and user in model.confusion for _, user, paused, _ in members]
    )
    rated = agreement.informative_voters(accuracy, working).tolist()
    for flag in (True, False):
        changed = [m[0] for m, r in zip(members, rated, strict=True) if r is flag and m[3] != flag]
        if changed:
            Membership.objects.filter(pk__in=changed).update(informative=flag)


@dataclass
class Aggregate:
    """The consensus of every task of a campaign, as parallel arrays."""

    counts: np.ndarray
    status: np.ndarray
    label: np.ndarray
    agreement: np.ndarray
    votes_needed: np.ndarray
    ds_label: np.ndarray
    ds_confidence: np.ndarray
    # Confidence campaigns: the model fitted, and how many decisions it changed.
    model: FittedModel | None = None
    changes: int = 0


def aggregate(*, campaign: Campaign, data: CampaignArrays) -> Aggregate:
    """Apply the campaign's aggregation to all its tasks at once (see AGGREGATION.md).

    Majority campaigns use the trust rule; Dawid-Skene campaigns use the same rule for when to
    stop collecting and for PASS, and trust a clip when its posterior reaches the threshold.
    Dawid-Skene labels are computed for every campaign, so reviewers can see where the two
    aggregations disagree. Reviewer decisions (adjudicated or review-locked) and gold clips are
    kept as they are; a task's extra votes (asked for by a reviewer) raise its need and its cap.
    """
    counts = data.counts()
    status, label, share, needed = _decide_by_extra(campaign, counts, data.extra_votes)
    model = None
    if campaign.aggregation == Campaign.Aggregation.CONFIDENCE:
        model = model_fit(data=data)
        status, label, ds_conf, needed, top = confidence_decide(
            model, data.vote_task, data.vote_annotator, data.vote_answer, counts.sum(axis=1),
            campaign.votes_per_clip + data.extra_votes, campaign.max_votes + data.extra_votes,
            campaign.target_precision, vote_scene=data.scene_id[data.vote_task],
        )  # fmt: skip
        ds_label = np.where(top < N_CLASSES, top, -1)
    else:
        ds_label, ds_conf = dawid_skene_labels(data=data)
    if campaign.aggregation == Campaign.Aggregation.DAWID_SKENE:
        total = counts.sum(axis=1)
        cap = campaign.max_votes + data.extra_votes
        decided = total >= np.minimum(campaign.votes_per_clip + data.extra_votes, cap)
        ds_trusted = decided & (status != agreement.DISCARDED) & (ds_label >= 0)
        ds_trusted &= ds_conf >= campaign.ds_threshold
        undecided = decided & (status != agreement.DISCARDED) & ~ds_trusted
        at_cap = total >= cap
        status = np.where(ds_trusted, agreement.TRUSTED, status)
        status = np.where(undecided & at_cap, agreement.DISPUTED, status)
        status = np.where(undecided & ~at_cap, agreement.COLLECTING, status)
        needed = np.where(undecided & ~at_cap, total + 1, needed)
        label = np.where(status == agreement.TRUSTED, ds_label, -1)
    keep = (data.status == agreement.ADJUDICATED) | data.review_locked | data.is_gold
    status = np.where(keep, data.status, status)
    label = np.where(keep, data.label, label)
    needed = np.where(keep, data.votes_needed, needed)
    changes = int(((status != data.status) | (label != data.label)).sum())
    return Aggregate(counts, status, label, share, needed, ds_label, ds_conf, model, changes)


def _decide_by_extra(
    campaign: Campaign | _Rule, counts: np.ndarray, extra: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply the trust rule per group of tasks with the same extra votes (usually one group)."""
    n = len(counts)
    status = np.zeros(n, dtype=np.int64)
    label = np.full(n, -1, dtype=np.int64)
    share = np.zeros(n, dtype=np.float64)
    needed = np.zeros(n, dtype=np.int64)
    for value in np.unique(extra).tolist():
        rows = extra == value
        s, lab, a, need = agreement.decide(
            counts[rows],
            campaign.votes_per_clip + value,
            campaign.max_votes + value,
            campaign.min_agreement,
        )
        status[rows], label[rows], share[rows], needed[rows] = s, lab, a, need
    return status, label, share, needed


def dawid_skene_labels(*, data: CampaignArrays) -> tuple[np.ndarray, np.ndarray]:
    """Return each task's Dawid-Skene label (-1 without class votes) and its posterior."""
    classes = data.vote_answer < N_CLASSES  # PASS is an answer, not a class
    n = data.n_tasks
    if not classes.any():
        return np.full(n, -1), np.zeros(n)
    workers, worker_idx = np.unique(data.vote_annotator[classes], return_inverse=True)
    gold = np.where(data.is_gold, data.gold_label, -1)
    result = agreement.dawid_skene(
        data.vote_task[classes], worker_idx, data.vote_answer[classes],
        n_clips=n, n_workers=len(workers), n_classes=N_CLASSES, gold=gold,
    )  # fmt: skip
    return result.labels.astype(np.int64), result.confidence


#: A confidence campaign is refitted once its valid votes exceed the last fit's by this share
#: (and by at least REFIT_MIN_VOTES).
REFIT_GROWTH = 0.2
REFIT_MIN_VOTES = 200


def campaigns_due_refit() -> list[int]:
    """The active confidence campaigns whose valid votes grew past the refit line.

    Counted from the tasks' ``vote_count`` (kept by the consensus), one grouped query."""
    fitted = dict(TrustModel.objects.values_list("campaign_id", "votes_at_fit"))
    rows = (
        Task.objects.filter(
            campaign__aggregation=Campaign.Aggregation.CONFIDENCE,
            campaign__state=Campaign.State.ACTIVE,
        )
        .values("campaign_id")
        .annotate(votes=Sum("vote_count"))
    )
    due = []
    for row in rows:
        before = fitted.get(row["campaign_id"], 0)
        votes = row["votes"] or 0
        if votes - before >= max(REFIT_MIN_VOTES, REFIT_GROWTH * before):
            due.append(row["campaign_id"])
    return due


# A count row as JSON, as json.dumps writes it (a format is 5 times faster on 86,000 rows).
_COUNTS_JSON = "[" + ", ".join(["%d"] * N_ANSWERS) + "]"


def campaign_recompute(*, campaign_id: int, progress=None) -> int:
    """Recompute the consensus of every task of a campaign; return how many rows changed.

    Bulk reads into arrays, one vectorised aggregation, one bulk write: a FERV39k-scale
    campaign (86,000 clips, 5 votes each) takes seconds, not the minutes a loop of saves would.
    """
    campaign = Campaign.objects.get(pk=campaign_id)
    report = progress or (lambda step: None)
    report("loading votes")
    data = load_campaign(campaign_id=campaign_id)
    report("aggregating")
    result = aggregate(campaign=campaign, data=data)
    if result.model is not None:
        # Stored before the rows: a vote landing meanwhile is decided with the new model too.
        voters, per_voter = np.unique(data.vote_annotator, return_counts=True)
        model_store(
            campaign_id=campaign_id, model=result.model, changes=result.changes,
            votes=dict(zip(voters.tolist(), per_voter.tolist(), strict=True)),
        )  # fmt: skip
    report("writing")
    rows = zip(
        data.task_id.tolist(),
        [_COUNTS_JSON % tuple(c) for c in result.counts.tolist()],
        result.counts.sum(axis=1).tolist(),
        [agreement.Status(s).key for s in result.status.tolist()],
        [None if x < 0 else x for x in result.label.tolist()],
        result.agreement.tolist(),
        result.votes_needed.tolist(),
        [None if x < 0 else x for x in result.ds_label.tolist()],
        result.ds_confidence.tolist(),
        data.vote_seq.tolist(),
        strict=True,
    )
    return consensus_write(list(rows))
