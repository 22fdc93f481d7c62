"""Collusion and fatigue signals (issue 14), computed in the statistics refresh.

* **Collusion.** For each pair of annotators with at least ``MIN_OVERLAP`` clips in common, the
  number of those clips where they gave the same answer against the number expected if each
  answered independently given the truth: on each shared clip, the chance of agreeing is
  sum_k P(state k | the other voters) * sum_l confusion_a[k, l] * confusion_b[k, l], with the
  clip's posterior taken without the pair's own two votes and the confusions of the campaign's
  fitted model (``consensus.model_fit``). The excess is measured as a z-score,
  (observed - expected) / sqrt(sum p (1 - p)). A pair is flagged at z >= ``COLLUSION_Z`` with
  an excess of at least ``COLLUSION_EXCESS`` of the shared clips.
* **Fatigue.** Each annotator's votes that can be checked (on gold clips, against the reference;
  on trusted or adjudicated clips, against the final label), in the order given, are split into
  a first and a second half; the accuracy of each and a two-proportion z-score. Flagged with at
  least ``FATIGUE_MIN`` checked votes, a drop of at least ``FATIGUE_DROP`` and z >=
  ``FATIGUE_Z``. The evidence includes the accuracy per quarter.
"""

from __future__ import annotations

import math

from django.contrib.auth import get_user_model

from clips.lazy import lazy_module

from .loading import CampaignArrays, fetch_ints

np = lazy_module("numpy")

MIN_OVERLAP = 15
COLLUSION_Z = 4.0
COLLUSION_EXCESS = 0.15
FATIGUE_MIN = 40
FATIGUE_DROP = 0.15
FATIGUE_Z = 3.0
MAX_ROWS = 20


def _pairs(vote_task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of votes on the same clip, as two arrays of vote indices."""
    order = np.argsort(vote_task, kind="stable")
    sorted_task = vote_task[order]
    first, second = [], []
    for d in range(1, len(order)):
        same = sorted_task[d:] == sorted_task[:-d]
        if not same.any():
            break
        idx = np.flatnonzero(same)
        first.append(order[idx])
        second.append(order[idx + d])
    if not first:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(first), np.concatenate(second)


def collusion(
    data: CampaignArrays,
    priors: np.ndarray,
    confusion: dict[int, np.ndarray],
    newcomer: np.ndarray,
    *,
    min_overlap: int = MIN_OVERLAP,
) -> list[dict]:
    """Return the pairs of annotators with the most excess agreement, flagged ones first."""
    if len(data.vote_task) < 2:
        return []
    annotators, worker = np.unique(data.vote_annotator, return_inverse=True)
    worker = worker.reshape(-1)
    conf = np.stack([confusion.get(int(a), newcomer) for a in annotators.tolist()])
    with np.errstate(divide="ignore"):
        log_conf = np.log(conf)
    per_vote = log_conf[worker, :, data.vote_answer]  # votes x K
    joint = np.stack(
        [np.bincount(data.vote_task, weights=per_vote[:, k], minlength=data.n_tasks)
         for k in range(len(priors))],
        axis=1,
    )  # fmt: skip
    with np.errstate(divide="ignore"):
        joint += np.log(priors)[None]
    a, b = _pairs(data.vote_task)
    # One entry per pair of votes: the annotators ordered, the clip's posterior without them.
    wa, wb = np.minimum(worker[a], worker[b]), np.maximum(worker[a], worker[b])
    keep = wa != wb
    a, b, wa, wb = a[keep], b[keep], wa[keep], wb[keep]
    if not len(a):
        return []
    rest = joint[data.vote_task[a]] - per_vote[a] - per_vote[b]
    rest = np.where(np.isfinite(rest), rest, -1e300)
    rest -= rest.max(axis=1, keepdims=True)
    post = np.exp(rest)
    post /= post.sum(axis=1, keepdims=True)
    # The chance that two annotators give the same answer to a clip of state k, for every
    # pair of annotators (W x W x K), then gathered per pair of votes: not two K x K
    # confusions per pair of votes (860,000 pairs on a FERV39k-scale campaign).
    same = np.einsum("akl,bkl->abk", conf, conf)
    chance = (post * same[wa, wb]).sum(axis=1)
    agree = data.vote_answer[a] == data.vote_answer[b]
    key = wa * len(annotators) + wb
    size = len(annotators) ** 2
    shared = np.bincount(key, minlength=size)
    observed = np.bincount(key, weights=agree.astype(float), minlength=size)
    expected = np.bincount(key, weights=chance, minlength=size)
    variance = np.bincount(key, weights=chance * (1 - chance), minlength=size)
    candidates = np.flatnonzero(shared >= min_overlap)
    if not len(candidates):
        return []
    z = (observed[candidates] - expected[candidates]) / np.sqrt(
        np.maximum(variance[candidates], 1e-9)
    )
    excess = (observed[candidates] - expected[candidates]) / shared[candidates]
    names = _names(annotators)
    rows = []
    for i in np.argsort(-z)[:MAX_ROWS].tolist():
        pair = int(candidates[i])
        first, second = annotators[pair // len(annotators)], annotators[pair % len(annotators)]
        rows.append(
            {
                "annotators": [names.get(int(first), ""), names.get(int(second), "")],
                "annotator_ids": [int(first), int(second)],
                "shared_clips": int(shared[pair]),
                "agreed": int(observed[pair]),
                "expected": round(float(expected[pair]), 2),
                "z": round(float(z[i]), 2),
                "flagged": bool(z[i] >= COLLUSION_Z and excess[i] >= COLLUSION_EXCESS),
            }
        )
    return rows


def fatigue(data: CampaignArrays, *, campaign_id: int, min_checked: int = FATIGUE_MIN) -> list:
    """Return each annotator whose checked accuracy fell from the first half of their votes to
    the second, the largest drops first (flagged ones marked)."""
    reference = np.where(data.is_gold, data.gold_label, data.label)
    # The order each annotator answered in; one query, read into arrays.
    rows = fetch_ints(_VOTES_IN_ORDER, [campaign_id], 3)
    if not len(rows) or not data.n_tasks:
        return []
    annotator, task_id, answer = rows.T
    at = np.clip(np.searchsorted(data.task_id, task_id), 0, data.n_tasks - 1)
    ref = np.where(data.task_id[at] == task_id, reference[at], -1)
    checked = ref >= 0
    annotator, right = annotator[checked], (answer[checked] == ref[checked])
    ids, starts, sizes = np.unique(annotator, return_index=True, return_counts=True)
    names = _names(ids[sizes >= min_checked])
    rows_out = []
    for who, start, n in zip(ids.tolist(), starts.tolist(), sizes.tolist(), strict=True):
        if n < min_checked:
            continue
        checks = right[start : start + n]
        half = n // 2
        early, late = checks[:half], checks[half:]
        p1, p2 = early.mean(), late.mean()
        pooled = checks.mean()
        spread = math.sqrt(max(pooled * (1 - pooled) * (1 / len(early) + 1 / len(late)), 1e-12))
        z = (p1 - p2) / spread
        quarters = [round(float(q.mean()), 3) for q in np.array_split(checks, 4)]
        rows_out.append(
            {
                "annotator": names.get(who, ""),
                "annotator_id": who,
                "checked_votes": n,
                "accuracy_first_half": round(float(p1), 3),
                "accuracy_second_half": round(float(p2), 3),
                "accuracy_by_quarter": quarters,
                "z": round(float(z), 2),
                "flagged": bool(p1 - p2 >= FATIGUE_DROP and z >= FATIGUE_Z),
            }
        )
    rows_out.sort(key=lambda r: -r["z"])
    return rows_out[:MAX_ROWS]


# Each annotator's valid votes in the order given (a stable sort: annotator, then time, then id).
_VOTES_IN_ORDER = """
SELECT annotator_id, task_id, answer FROM annotations_vote
WHERE campaign_id = %s AND is_valid
ORDER BY annotator_id, created_at, id
"""


def _names(ids: np.ndarray) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=ids.tolist()).values_list("pk", "username"))


def compute(*, data: CampaignArrays, campaign_id: int) -> dict:
    """Both signals for a campaign, as JSON-ready data."""
    from .consensus import model_fit, model_load
    from .models import TrustModel

    # The model the last recompute (or refit) stored: fitting again here doubled the cost of
    # the statistics. A campaign without one (not aggregated by confidence) gets a fit.
    if TrustModel.objects.filter(campaign_id=campaign_id).exists():
        model = model_load(campaign_id=campaign_id)
    else:
        model = model_fit(data=data)
    return {
        "collusion": collusion(data, model.priors, model.confusion, model.newcomer),
        "fatigue": fatigue(data, campaign_id=campaign_id),
        "rules": {
            "min_overlap": MIN_OVERLAP, "collusion_z": COLLUSION_Z,
            "collusion_excess": COLLUSION_EXCESS, "fatigue_min": FATIGUE_MIN,
            "fatigue_drop": FATIGUE_DROP, "fatigue_z": FATIGUE_Z,
        },
    }  # fmt: skip
