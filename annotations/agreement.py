"""Agreement statistics, the clip trust rule, gold batch scoring and Dawid-Skene aggregation.

Pure numpy (plus the ``krippendorff`` package): nothing here imports Django, so the functions can
run in a Celery task, a management command or a notebook on plain arrays pulled from the database.

Answers are indexed like ``labelstudio_ferv.expressions.Answer``: the seven FERV39k classes
0..6 (angry, disgust, fear, happy, neutral, sad, surprise) and PASS = 7. PASS is an answer an
annotator may record, never a label. Every function works on whole integer arrays at once; the
only Python loops are over classes, groups or EM iterations, never over votes or clips.

See ``AGGREGATION.md`` next to this file for the reasoning behind the rules.
"""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clips.lazy import lazy_module

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

np = lazy_module("numpy")
krippendorff = lazy_module("krippendorff")


__all__ = [
    "ADJUDICATED",
    "COLLECTING",
    "DISCARDED",
    "DISPUTED",
    "STATUS_KEYS",
    "TRUSTED",
    "DSResult",
    "Status",
    "Verdict",
    "accuracy_below",
    "alpha_by_group",
    "clip_posteriors",
    "decide_by_posterior",
    "default_priors",
    "prior_confusion",
    "dawid_skene",
    "decide",
    "fleiss_kappa",
    "krippendorff_nominal",
    "krippendorff_nominal_from_counts",
    "majority",
    "score_annotator",
    "score_batch",
]

# Answers are columns: the classes, then PASS last (the app's layout is
# labelstudio_ferv.expressions.Answer, passed in as the columns of the count tables).


class Status(enum.IntEnum):
    """A clip's consensus status as a code; the model's ``ConsensusStatus`` stores its ``key``.

    ``decide`` returns these codes; ADJUDICATED is only ever set by a reviewer.
    """

    COLLECTING = 0
    TRUSTED = 1
    DISPUTED = 2
    DISCARDED = 3
    ADJUDICATED = 4

    @property
    def key(self) -> str:
        """Return the lowercase name stored in the database and shown in the API."""
        return self.name.lower()


COLLECTING, TRUSTED, DISPUTED, DISCARDED, ADJUDICATED = Status
STATUS_KEYS: tuple[str, ...] = tuple(s.key for s in Status)


class Verdict(enum.StrEnum):
    """The verdict of ``score_batch`` on a gold batch (the model's ``GoldBatch.Verdict``)."""

    ACCEPT = "accept"
    IMPROPER = "improper"
    UNACCEPTABLE = "unacceptable"


# Slack for comparing a share with a threshold, so that 2 of 3 votes meet a 2/3 threshold (and
# 8 of 10 gold answers meet 0.8) whatever the rounding of either side. It is far smaller than
# the gap between two different vote shares a clip or a batch can have.
_SHARE_TOL = 1e-9


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _as_counts(counts: ArrayLike, name: str = "counts") -> NDArray[np.int64]:
    """Return ``counts`` as a 2-D int64 array, or raise ValueError if it is not a count table."""
    arr = np.asarray(counts)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x categories), got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold whole numbers")
    elif arr.dtype.kind not in "biu":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{name} must not be negative")
    return out


def _as_index(values: ArrayLike, name: str, upper: int) -> NDArray[np.int64]:
    """Return ``values`` as a 1-D int64 array with every entry in ``[0, upper)``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= upper):
        raise ValueError(f"{name} must lie in [0, {upper})")
    return out


# --------------------------------------------------------------------------------------------
# Agreement coefficients
# --------------------------------------------------------------------------------------------


def _reliability_to_counts(reliability: ArrayLike) -> NDArray[np.int64]:
    """Turn a coders x units matrix (NaN, or "nan" for strings, = missing) into unit counts."""
    data = np.asarray(reliability)
    if data.ndim != 2:
        raise ValueError(f"reliability must be 2-D (coders x units), got shape {data.shape}")
    kind = data.dtype.kind
    if kind in "biuf":
        present = ~np.isnan(data.astype(np.float64))
    elif kind in "US":
        # np.asarray turns float('nan') into the string "nan" in a string array.
        present = data != data.dtype.type("nan")
    else:
        raise ValueError(f"reliability must be numeric or strings, got dtype {data.dtype}")
    n_units = data.shape[1]
    units = np.broadcast_to(np.arange(n_units), data.shape)[present]
    _, values = np.unique(data[present], return_inverse=True)
    n_values = int(values.max()) + 1 if values.size else 0
    flat = np.bincount(units * n_values + values, minlength=n_units * n_values)
    return flat.reshape(n_units, n_values).astype(np.int64)


def krippendorff_nominal(reliability: ArrayLike) -> float:
    """Return Krippendorff's alpha for nominal data given as a coders x units matrix.

    Rows are coders, columns are units; a missing value is NaN (or the string "nan" in a string
    array, which is what ``np.asarray`` makes of NaN next to strings). Values may be numbers or
    strings; only equality matters. The value domain is the set of values that occur: for
    nominal data, values nobody used do not change alpha.

    Return NaN when the expected disagreement is 0 (every pairable value is the same, so alpha
    is undefined). Raise ValueError when no unit has values from at least two coders (for
    instance a single coder), because nothing can then be compared.
    """
    return krippendorff_nominal_from_counts(_reliability_to_counts(reliability))


def krippendorff_nominal_from_counts(counts: ArrayLike) -> float:
    """Return Krippendorff's alpha for nominal data given as units x categories value counts.

    ``counts[u, c]`` is how many coders gave unit ``u`` the value ``c``: exactly the per-clip
    answer counts the app stores. Units with fewer than two values are not pairable and are
    ignored. The ``krippendorff`` package is always called with ``level_of_measurement=
    "nominal"`` (its default is "interval", which would treat class indices as numbers).

    Return NaN when the expected disagreement is 0 (all pairable values fall in one category).
    Raise ValueError when no unit is pairable (for instance a single coder).
    """
    table = _as_counts(counts)
    pairable = table.sum(axis=1) >= 2
    if not pairable.any():
        raise ValueError("no pairable unit: alpha needs a unit with values from two coders")
    table = table[pairable]
    if np.count_nonzero(table.sum(axis=0)) < 2:
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        value = krippendorff.alpha(value_counts=table, level_of_measurement="nominal")
    return float(value)


def alpha_by_group(counts: ArrayLike, group_ids: ArrayLike) -> dict[int, float]:
    """Return nominal Krippendorff's alpha for each group of units (for example per scene).

    ``counts`` is units x categories as in ``krippendorff_nominal_from_counts`` and
    ``group_ids`` gives each unit's integer group. The coincidence sums are built for all groups
    at once with ``np.bincount``:

        alpha_g = 1 - (n_g - 1) * (n_g - sum_c o_gcc) / (n_g**2 - sum_c n_gc**2)

    where, over the pairable units of group g, ``o_gcc`` is the diagonal of the coincidence
    matrix, ``n_gc`` the number of pairable values in category c and ``n_g`` their total.

    Keys are the distinct group ids (as ``int``). Unlike the single-table functions, a group
    without a pairable unit, or with zero expected disagreement, maps to NaN instead of raising,
    so one quiet scene cannot break a report on all of them.
    """
    table = _as_counts(counts)
    groups = np.asarray(group_ids)
    if groups.ndim != 1 or groups.shape[0] != table.shape[0]:
        raise ValueError("group_ids must be 1-D with one entry per row of counts")
    if groups.size and groups.dtype.kind not in "iu":
        raise ValueError(f"group_ids must hold integers, got dtype {groups.dtype}")
    keys, group = np.unique(groups, return_inverse=True)
    n_groups, n_values = keys.shape[0], table.shape[1]

    per_unit = table.sum(axis=1)
    pairable = per_unit >= 2
    table, group, per_unit = table[pairable], group[pairable], per_unit[pairable]
    matches = (table * (table - 1)).sum(axis=1) / (per_unit - 1)  # this unit's sum_c o_cc

    n_total = np.bincount(group, weights=per_unit, minlength=n_groups)
    diagonal = np.bincount(group, weights=matches, minlength=n_groups)
    flat = (group[:, None] * n_values + np.arange(n_values)).ravel()
    n_by_value = np.bincount(flat, weights=table.ravel(), minlength=n_groups * n_values)
    expected = n_total**2 - (n_by_value.reshape(n_groups, n_values) ** 2).sum(axis=1)

    alpha = np.full(n_groups, np.nan)
    ok = expected > 0
    alpha[ok] = 1.0 - (n_total[ok] - 1.0) * (n_total[ok] - diagonal[ok]) / expected[ok]
    return {int(k): float(a) for k, a in zip(keys.tolist(), alpha.tolist(), strict=True)}


def fleiss_kappa(counts: ArrayLike) -> float:
    """Return Fleiss' kappa for a subjects x categories table of rating counts.

    Every subject must have the same number of ratings n >= 2, and there must be at least one
    subject; otherwise raise ValueError. Return NaN when chance agreement is 1 (every rating in
    one category), where kappa is undefined.
    """
    table = _as_counts(counts)
    if table.shape[0] == 0:
        raise ValueError("fleiss_kappa needs at least one subject")
    per_subject = table.sum(axis=1)
    n = int(per_subject[0])
    if np.any(per_subject != n):
        raise ValueError("every subject must have the same number of ratings")
    if n < 2:
        raise ValueError("every subject needs at least two ratings")
    observed = ((table * (table - 1)).sum(axis=1) / (n * (n - 1))).mean()
    shares = table.sum(axis=0) / (table.shape[0] * n)
    chance = float((shares**2).sum())
    if chance >= 1.0:
        return float("nan")
    return float((observed - chance) / (1.0 - chance))


# --------------------------------------------------------------------------------------------
# Majority and the trust rule
# --------------------------------------------------------------------------------------------


def majority(
    counts: ArrayLike,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Return the leading answer, its count and its share of the votes for each row.

    ``counts`` is rows x answers. ``label`` is the column whose count is strictly larger than
    every other column's in that row (a plurality without a tie; it need not exceed half the
    votes), or -1 when the top count is shared (a tie) or the row has no votes.
    ``top_count`` is the largest count and ``agreement`` is ``top_count / total`` (0 for a row
    without votes). Columns are generic: with the app's 8 columns the label may be PASS (7).
    """
    table = _as_counts(counts)
    n_rows, n_cols = table.shape
    if n_cols == 0:
        return (
            np.full(n_rows, -1, dtype=np.int64),
            np.zeros(n_rows, dtype=np.int64),
            np.zeros(n_rows, dtype=np.float64),
        )
    top = table.max(axis=1)
    total = table.sum(axis=1)
    unique_top = (table == top[:, None]).sum(axis=1) == 1
    label = np.where(unique_top & (total > 0), table.argmax(axis=1), -1).astype(np.int64)
    agreement = np.divide(top, total, out=np.zeros(n_rows, dtype=np.float64), where=total > 0)
    return label, top.astype(np.int64), agreement


def decide(
    counts: ArrayLike,
    needed: ArrayLike | int,
    max_votes: int,
    min_agreement: float = 2 / 3,
) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.float64], NDArray[np.int64]]:
    """Apply the trust rule to every clip and return ``(status, label, agreement, votes_needed)``.

    ``counts`` is clips x answers valid-vote counts, the classes then PASS in the last column
    (the app's 8 columns: 7 classes, PASS = 7); ``needed`` is the number of
    votes each clip currently asks for (one int for all clips, or one per clip) and
    ``max_votes`` the most votes any clip may get. For each clip, with ``total`` its votes and
    ``top`` the count of its leading answer:

    * ``total < needed``: COLLECTING, ``votes_needed = needed``.
    * the leading answer is a strict majority (its count beats every other answer's count, so a
      tie never wins) and ``top / total >= min_agreement``: TRUSTED with that class as label, or
      DISCARDED (label -1) if the leading answer is PASS.
    * otherwise, if ``total < max_votes``: COLLECTING with ``votes_needed = total + 1`` (a
      disputed clip asks for one more vote at a time);
    * otherwise DISPUTED (for the review queue), ``votes_needed`` unchanged.

    ``needed`` above ``max_votes`` is capped at ``max_votes``, so a clip holding ``max_votes``
    votes is always decided. The share comparison allows a 1e-9 slack so that 2 of 3 votes meet
    ``min_agreement = 2 / 3``. ``label`` is -1 unless the status is TRUSTED; ``agreement`` is
    ``top / total`` for every clip (0 without votes), PASS counting as an answer.
    ADJUDICATED is never produced here. Raise ValueError on a malformed table, ``needed < 1``,
    ``max_votes < 1`` or ``min_agreement`` outside ``(0, 1]``.
    """
    table = _as_counts(counts)
    if table.shape[1] < 2:
        raise ValueError("counts must have at least 2 columns (the classes, then PASS)")
    pass_answer = table.shape[1] - 1
    max_votes = operator.index(max_votes)
    if max_votes < 1:
        raise ValueError("max_votes must be at least 1")
    if not 0.0 < min_agreement <= 1.0:
        raise ValueError("min_agreement must lie in (0, 1]")
    n_clips = table.shape[0]
    need_in = np.asarray(needed)
    if need_in.size and need_in.dtype.kind not in "iu":
        raise ValueError("needed must hold integers")
    need = np.broadcast_to(need_in.astype(np.int64), (n_clips,))
    if n_clips and need.min() < 1:
        raise ValueError("needed must be at least 1")
    need = np.minimum(need, max_votes)

    leader, _, agreement = majority(table)
    total = table.sum(axis=1)
    agreed = (leader >= 0) & (agreement + _SHARE_TOL >= min_agreement)
    enough = total >= need
    accepted = enough & agreed
    unresolved = enough & ~agreed
    at_cap = total >= max_votes

    status = np.full(n_clips, COLLECTING, dtype=np.int8)
    status[accepted & (leader != pass_answer)] = TRUSTED
    status[accepted & (leader == pass_answer)] = DISCARDED
    status[unresolved & at_cap] = DISPUTED

    label = np.where(status == TRUSTED, leader, -1).astype(np.int8)
    votes_needed = np.where(unresolved & ~at_cap, total + 1, need).astype(np.int64)
    return status, label, agreement, votes_needed


# --------------------------------------------------------------------------------------------
# Gold batch scoring
# --------------------------------------------------------------------------------------------


def score_batch(correct: int, total: int, accept: float = 0.8, improper: float = 0.4) -> Verdict:
    """Return the verdict on a batch from its gold answers: "accept", "improper" or "unacceptable".

    The share ``correct / total`` of gold clips answered right gives "accept" at or above
    ``accept``, "improper" at or above ``improper`` and "unacceptable" below it (a 1e-9 slack
    makes 4 of 5 meet 0.8). A batch without gold answers is "improper": nothing vouched for it,
    so a reviewer should look rather than it passing silently or its votes being thrown away.
    Raise ValueError unless ``0 <= correct <= total`` and ``0 <= improper <= accept <= 1``.
    """
    correct, total = operator.index(correct), operator.index(total)
    if not 0 <= correct <= total:
        raise ValueError("need 0 <= correct <= total")
    if not 0.0 <= improper <= accept <= 1.0:
        raise ValueError("need 0 <= improper <= accept <= 1")
    if total == 0:
        return Verdict.IMPROPER
    share = correct / total + _SHARE_TOL
    if share >= accept:
        return Verdict.ACCEPT
    if share >= improper:
        return Verdict.IMPROPER
    return Verdict.UNACCEPTABLE


def accuracy_below(correct: int, total: int, line: float, prior: tuple[int, int] = (1, 1)) -> float:
    """Return P(accuracy < line) under the Beta posterior of an annotator's gold accuracy.

    The posterior is Beta(a, b) with ``a = prior[0] + correct`` and ``b = prior[1] + total -
    correct``. With whole-number parameters its CDF is a binomial tail, computed exactly in log
    space: P(Beta(a, b) < x) = P(Binomial(a + b - 1, x) >= a). Edge cases: no gold at all gives
    the prior's own CDF (for the uniform prior, ``line`` itself); ``line`` 0 gives 0 and
    ``line`` 1 gives 1. Raise ValueError unless ``0 <= correct <= total``, the
    prior holds two positive integers and ``0 <= line <= 1``.
    """
    correct, total = operator.index(correct), operator.index(total)
    a0, b0 = (operator.index(v) for v in prior)
    if not 0 <= correct <= total:
        raise ValueError("need 0 <= correct <= total")
    if a0 < 1 or b0 < 1:
        raise ValueError("the prior's pseudo-counts must be positive integers")
    if not 0.0 <= line <= 1.0:
        raise ValueError("line must lie in [0, 1]")
    if line <= 0.0:
        return 0.0
    if line >= 1.0:
        return 1.0
    a, b = a0 + correct, b0 + total - correct
    n = a + b - 1
    j = np.arange(a, n + 1, dtype=np.float64)
    log_terms = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(x + 1) for x in j])
        - np.array([math.lgamma(n - x + 1) for x in j])
        + j * math.log(line)
        + (n - j) * math.log1p(-line)
    )
    return float(min(1.0, np.exp(log_terms).sum()))


def score_annotator(
    correct: int,
    total: int,
    *,
    accept: float = 0.8,
    improper: float = 0.4,
    confidence: float = 0.97,
    prior: tuple[int, int] = (1, 1),
) -> Verdict:
    """Return the verdict the gold evidence supports on an annotator's accuracy.

    ``correct`` of ``total`` gold answers (all of the annotator's in the campaign since the
    last reinstatement, not one batch's). With the Beta posterior of ``accuracy_below``:
    "unacceptable" when P(accuracy < ``improper``) >= ``confidence``; else "improper" when
    P(accuracy < ``accept``) >= ``confidence``; else "accept". A verdict against the annotator
    therefore needs strong evidence: 0 of 5 gold right is still only "improper" (P(acc < 0.4)
    = 0.953), 0 of 6 is "unacceptable" (0.972), and 3 of 5 is "accept" (P(acc < 0.8) = 0.90).
    With no gold at all the verdict is "accept" (the uniform prior puts 0.8 below 0.8).
    Raise ValueError on counts as in ``accuracy_below``, or unless
    ``0 <= improper <= accept <= 1`` and ``0 < confidence < 1``.
    """
    if not 0.0 <= improper <= accept <= 1.0:
        raise ValueError("need 0 <= improper <= accept <= 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie in (0, 1)")
    if accuracy_below(correct, total, improper, prior) + _SHARE_TOL >= confidence:
        return Verdict.UNACCEPTABLE
    if accuracy_below(correct, total, accept, prior) + _SHARE_TOL >= confidence:
        return Verdict.IMPROPER
    return Verdict.ACCEPT


# --------------------------------------------------------------------------------------------
# Dawid-Skene
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DSResult:
    """Outcome of ``dawid_skene``.

    ``posteriors``: n_clips x K, P(true class | votes). ``labels``: MAP class per clip, -1 for a
    clip with neither votes nor gold. ``confidence``: posterior of ``labels`` (0 where -1).
    ``priors``: K class shares. ``confusion``: n_workers x K x K, row k = P(answer | true k).
    ``log_likelihood_trace``: the EM objective after each iteration (never decreasing).
    ``converged``: whether the relative change fell under ``tol`` before ``max_iter``.
    """

    posteriors: NDArray[np.float64]
    labels: NDArray[np.int64]
    confidence: NDArray[np.float64]
    priors: NDArray[np.float64]
    confusion: NDArray[np.float64]
    log_likelihood_trace: list[float] = field(default_factory=list)
    converged: bool = False


def _gold_array(gold: Mapping[int, int] | ArrayLike | None, n_clips: int, k: int) -> NDArray:
    """Return gold labels as an int64 array of length n_clips with -1 where a clip has none."""
    out = np.full(n_clips, -1, dtype=np.int64)
    if gold is None:
        return out
    if isinstance(gold, Mapping):
        if gold:
            idx = _as_index(np.fromiter(gold.keys(), dtype=np.int64), "gold clip", n_clips)
            out[idx] = np.fromiter(gold.values(), dtype=np.int64)
    else:
        arr = np.asarray(gold)
        if arr.shape != (n_clips,) or (arr.size and arr.dtype.kind not in "iu"):
            raise ValueError("a gold array must hold one integer per clip (-1 = no gold)")
        out[:] = arr
    if np.any((out < -1) | (out >= k)):
        raise ValueError(f"gold labels must lie in [0, {k}) (or -1 for none in an array)")
    return out


def _normalise(x: NDArray[np.float64], axis: int) -> NDArray[np.float64]:
    """Divide ``x`` by its sums along ``axis``; a slice summing to 0 becomes uniform."""
    total = x.sum(axis=axis, keepdims=True)
    uniform = np.full_like(x, 1.0 / x.shape[axis])
    return np.divide(x, total, out=uniform, where=total > 0)


def dawid_skene(
    clip_idx: ArrayLike,
    worker_idx: ArrayLike,
    answer: ArrayLike,
    n_clips: int,
    n_workers: int,
    n_classes: int,
    gold: Mapping[int, int] | ArrayLike | None = None,
    max_iter: int = 50,
    tol: float = 1e-6,
    smoothing: float = 0.01,
    confusion_prior: ArrayLike | None = None,
) -> DSResult:
    """Estimate true classes and per-worker confusion matrices with Dawid-Skene EM.

    Each vote is one entry of the three parallel arrays (clip, worker, answer). A worker may
    vote on a clip more than once; every vote counts. Answers must be classes in
    ``[0, n_classes)``: PASS is not a class, so the caller drops PASS votes before calling
    (an answer of 7 with 7 classes raises ValueError). ``gold`` maps clip -> reference class
    (a dict, or an array with -1 for "no gold"); those clips keep a one-hot posterior in every
    iteration, which anchors the workers' confusion matrices.

    EM starts from the soft majority vote (each clip's vote shares). An iteration is an M-step
    (class priors and confusion rows from the current posteriors, each cell plus ``smoothing``
    pseudo-votes) followed by an E-step (posteriors from priors x product of the confusion
    entries of the clip's votes, in log space). The objective recorded per iteration is the
    log-likelihood of the votes (and gold labels) plus ``smoothing * sum(log parameters)``,
    which EM never decreases; with ``smoothing=0`` it is the plain log-likelihood. Stop when
    its change is at most ``tol * |previous|`` or after ``max_iter`` iterations.

    ``confusion_prior`` (K x K pseudo-counts, row k = what a worker facing class k is believed
    to answer before any evidence) replaces ``smoothing`` in every worker's confusion rows: a
    worker with few votes keeps a confusion near the prior's rows, a busy one is ruled by its
    votes. The objective then adds ``sum(confusion_prior * log confusion)`` (the Dirichlet
    log-density up to a constant), which EM still never decreases.

    Clips with neither votes nor gold carry no evidence: their posterior is the prior and their
    label -1; they do not enter the prior estimate. Raise ValueError on malformed input.
    """
    n_clips, n_workers, k = (operator.index(v) for v in (n_clips, n_workers, n_classes))
    if n_clips < 0 or n_workers < 0 or k < 2:
        raise ValueError("need n_clips >= 0, n_workers >= 0 and n_classes >= 2")
    if operator.index(max_iter) < 1 or tol < 0 or smoothing < 0:
        raise ValueError("need max_iter >= 1, tol >= 0 and smoothing >= 0")
    clip = _as_index(clip_idx, "clip_idx", n_clips)
    worker = _as_index(worker_idx, "worker_idx", n_workers)
    ans = _as_index(answer, "answer", k)
    if not clip.shape == worker.shape == ans.shape:
        raise ValueError("clip_idx, worker_idx and answer must have the same length")
    gold_label = _gold_array(gold, n_clips, k)
    if confusion_prior is None:
        pseudo = np.full((k, k), float(smoothing))
    else:
        pseudo = np.asarray(confusion_prior, dtype=np.float64)
        if pseudo.shape != (k, k) or not np.all(np.isfinite(pseudo)) or pseudo.min() < 0:
            raise ValueError("confusion_prior must be a K x K array of pseudo-counts >= 0")
    is_gold = gold_label >= 0
    gold_rows = np.flatnonzero(is_gold)

    # A vote's (worker, answer) pair indexes one column of a k x (n_workers * k) table, so each
    # EM step is, per class, one gather from a small table plus one np.bincount over the votes.
    # Arrays are class-major (k x ...) so that every per-class slice is contiguous.
    pair = worker * k + ans
    n_pairs = n_workers * k
    has_votes = np.bincount(clip, minlength=n_clips) > 0
    observed = has_votes | is_gold
    plain = has_votes & ~is_gold  # clips whose class is inferred (gold clips are known)
    gold_of_gold = gold_label[gold_rows]
    one_hot_gold = np.eye(k)[:, gold_of_gold]

    # Initial posteriors: soft majority vote (each clip's vote shares); gold clips one-hot.
    votes = np.bincount(ans * n_clips + clip, minlength=k * n_clips).reshape(k, n_clips)
    post = _normalise(votes.astype(np.float64), axis=0)
    post[:, gold_rows] = one_hot_gold

    trace: list[float] = []
    converged = False
    priors = np.full(k, 1.0 / k)
    confusion = np.full((n_workers, k, k), 1.0 / k)
    for _ in range(max_iter):
        # M-step: expected class counts, and per (worker, answer) the expected true classes.
        priors = _normalise(post[:, observed].sum(axis=1) + smoothing, axis=0)
        mass = np.stack(
            [np.bincount(pair, weights=p[clip], minlength=n_pairs) for p in post]
        ).astype(np.float64)  # (bincount of no votes returns integers)
        confusion = _normalise(mass.reshape(k, n_workers, k).transpose(1, 0, 2) + pseudo, axis=2)

        # E-step: log prior plus the log confusion entries of each clip's votes.
        with np.errstate(divide="ignore"):
            log_priors = np.log(priors)
            log_conf = np.log(confusion)
        table = log_conf.transpose(1, 0, 2).reshape(k, n_pairs)  # [true, worker * k + answer]
        joint = (
            np.stack([np.bincount(clip, weights=t[pair], minlength=n_clips) for t in table])
            + log_priors[:, None]
        )
        peak = joint.max(axis=0)
        peak = np.where(np.isfinite(peak), peak, 0.0)
        with np.errstate(under="ignore"):
            weights = np.exp(joint - peak)
        evidence = weights.sum(axis=0)
        post = _normalise(weights, axis=0)  # clips without votes get exactly the prior
        post[:, gold_rows] = one_hot_gold

        # Objective: evidence of inferred clips, joint probability of gold clips with their
        # known class (a gold clip without votes adds log prior), plus the smoothing term.
        with np.errstate(divide="ignore"):
            ll = float((np.log(evidence[plain]) + peak[plain]).sum())
        ll += float(joint[gold_of_gold, gold_rows].sum())
        if smoothing > 0:
            ll += smoothing * float(log_priors.sum())
        if n_workers:
            with np.errstate(invalid="ignore"):  # 0 * log 0 counts as 0
                ll += float(np.nansum(pseudo[None] * log_conf))
        trace.append(ll)
        if len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-2]):
            converged = True
            break

    post = np.ascontiguousarray(post.T)
    labels = np.where(observed, post.argmax(axis=1), -1).astype(np.int64)
    confidence = np.where(observed, post.max(axis=1), 0.0)
    return DSResult(
        posteriors=post,
        labels=labels,
        confidence=confidence,
        priors=priors,
        confusion=confusion,
        log_likelihood_trace=trace,
        converged=converged,
    )


# --------------------------------------------------------------------------------------------
# The confidence rule: each clip's posterior from its voters' confusions
# --------------------------------------------------------------------------------------------

#: A newcomer's believed accuracy (the diagonal of the prior confusion) and the weight of that
#: belief in pseudo-answers per row; see ``prior_confusion``.
NEWCOMER_ACCURACY = 0.7
NEWCOMER_STRENGTH = 8.0
#: The share of clips believed unlabellable (PASS as the truth) before any evidence.
PASS_PRIOR = 0.05


def prior_confusion(
    n_states: int, accuracy: float = NEWCOMER_ACCURACY, strength: float = NEWCOMER_STRENGTH
) -> NDArray[np.float64]:
    """Return the pseudo-counts (states x states) of a newcomer's confusion.

    Each row holds ``strength`` pseudo-answers: ``accuracy`` of them on the true state, the rest
    spread evenly over the other states. Normalised, each row is what an annotator nobody knows
    is believed to answer. Raise ValueError unless ``n_states >= 2``, ``0 < accuracy < 1`` and
    ``strength > 0``.
    """
    n_states = operator.index(n_states)
    if n_states < 2 or not 0.0 < accuracy < 1.0 or not strength > 0:
        raise ValueError("need n_states >= 2, 0 < accuracy < 1 and strength > 0")
    off = (1.0 - accuracy) / (n_states - 1)
    table = np.full((n_states, n_states), off)
    np.fill_diagonal(table, accuracy)
    return table * strength


def default_priors(n_states: int, pass_share: float = PASS_PRIOR) -> NDArray[np.float64]:
    """Return the state prior before any fit: the classes equal, the last state (PASS) at
    ``pass_share``. Raise ValueError unless ``n_states >= 2`` and ``0 < pass_share < 1``."""
    n_states = operator.index(n_states)
    if n_states < 2 or not 0.0 < pass_share < 1.0:
        raise ValueError("need n_states >= 2 and 0 < pass_share < 1")
    priors = np.full(n_states, (1.0 - pass_share) / (n_states - 1))
    priors[-1] = pass_share
    return priors


def _checked_votes(clip_idx, worker_idx, answer, n_clips, confusion, priors):
    """Check the votes and the model's shapes; return them as arrays with the logs of the model.

    Raise ValueError on shapes that do not match or an index out of range.
    """
    conf = np.asarray(confusion, dtype=np.float64)
    prior = np.asarray(priors, dtype=np.float64)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2] or prior.shape != (conf.shape[1],):
        raise ValueError("confusion must be W x K x K and priors K")
    n_workers, k = conf.shape[0], conf.shape[1]
    n_clips = operator.index(n_clips)
    clip = _as_index(clip_idx, "clip_idx", max(n_clips, 1))
    worker = _as_index(worker_idx, "worker_idx", max(n_workers, 1))
    ans = _as_index(answer, "answer", k)
    if not clip.shape == worker.shape == ans.shape:
        raise ValueError("clip_idx, worker_idx and answer must have the same length")
    with np.errstate(divide="ignore"):
        log_conf = np.log(conf)
        log_prior = np.log(prior)
    return conf, clip, worker, ans, n_clips, log_conf, log_prior


def clip_posteriors(
    clip_idx: ArrayLike,
    worker_idx: ArrayLike,
    answer: ArrayLike,
    n_clips: int,
    confusion: ArrayLike,
    priors: ArrayLike,
) -> NDArray[np.float64]:
    """Return each clip's posterior over the states given its votes (n_clips x K).

    ``confusion[w, k, l]`` is P(worker w answers l | true state k) (rows sum to 1) and
    ``priors[k]`` the state prior. Votes are independent given the state, so a clip's log
    posterior is log prior plus the sum of its votes' log confusion columns, normalised in log
    space (this is Dawid-Skene's E-step). A clip without votes gets the prior. A zero entry
    is allowed (the state is then excluded); a clip whose votes exclude every state gets the
    prior too (no state explains them, so they are no evidence). Raise ValueError on shapes
    that do not match or a vote index out of range.
    """
    conf, clip, worker, ans, n_clips, log_conf, log_prior = _checked_votes(
        clip_idx, worker_idx, answer, n_clips, confusion, priors
    )
    # [state, vote]: the log probability of each vote's answer under each true state.
    per_vote = log_conf[worker, :, ans].T
    joint = np.stack([np.bincount(clip, weights=row, minlength=n_clips) for row in per_vote])
    joint = joint + log_prior[:, None]
    peak = joint.max(axis=0)
    dead = ~np.isfinite(peak)
    joint[:, dead] = log_prior[:, None]
    peak = np.where(dead, log_prior.max(), peak)
    with np.errstate(under="ignore"):
        weights = np.exp(joint - peak)
    return np.ascontiguousarray(_normalise(weights, axis=0).T)


def decide_by_posterior(
    posteriors: ArrayLike,
    total: ArrayLike,
    needed: ArrayLike | int,
    max_votes: ArrayLike | int,
    target: float = 0.97,
) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.float64], NDArray[np.int64]]:
    """Apply the confidence rule; return ``(status, label, confidence, votes_needed)``.

    ``posteriors`` is clips x K (the classes, then PASS as the last state), ``total`` each
    clip's valid votes, ``needed`` the votes it asks for and ``max_votes`` its cap (ints, or one
    per clip). With ``top`` the most probable state and ``confidence`` its posterior:

    * ``total < needed``: COLLECTING, ``votes_needed = needed``;
    * ``confidence >= target``: TRUSTED with ``top`` as label, or DISCARDED if ``top`` is PASS;
    * else, under the cap: COLLECTING with ``votes_needed = total + 1`` (one vote at a time);
    * else DISPUTED, for review.

    ``needed`` above the cap is capped, so a clip at the cap is always decided. Ties for
    ``top`` go to the lower index; they never reach a target above 1/2. ``label`` is -1 unless
    TRUSTED; ``confidence`` is returned for every clip. Raise ValueError unless
    ``0.5 < target < 1``, ``needed >= 1`` and ``max_votes >= 1``.
    """
    post = np.asarray(posteriors, dtype=np.float64)
    if post.ndim != 2 or post.shape[1] < 2:
        raise ValueError("posteriors must be clips x states (at least 2)")
    if not 0.5 < target < 1.0:
        raise ValueError("target must lie in (0.5, 1)")
    n = post.shape[0]
    total = np.broadcast_to(np.asarray(total, dtype=np.int64), (n,))
    cap = np.broadcast_to(np.asarray(max_votes, dtype=np.int64), (n,))
    need = np.broadcast_to(np.asarray(needed, dtype=np.int64), (n,))
    if n and (need.min() < 1 or cap.min() < 1):
        raise ValueError("needed and max_votes must be at least 1")
    need = np.minimum(need, cap)
    top = post.argmax(axis=1)
    confidence = post.max(axis=1) if n else np.zeros(0)
    enough = total >= need
    sure = enough & (confidence + _SHARE_TOL >= target)
    unsure = enough & ~sure
    at_cap = total >= cap
    pass_state = post.shape[1] - 1
    status = np.full(n, COLLECTING, dtype=np.int8)
    status[sure & (top != pass_state)] = TRUSTED
    status[sure & (top == pass_state)] = DISCARDED
    status[unsure & at_cap] = DISPUTED
    label = np.where(status == TRUSTED, top, -1).astype(np.int8)
    votes_needed = np.where(unsure & ~at_cap, total + 1, need).astype(np.int64)
    return status, label, confidence, votes_needed


# --------------------------------------------------------------------------------------------
# The confidence rule's model: settings, fit, decision and the unsettleable stop
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustSettings:
    """How the confidence rule turns votes into a posterior (see AGGREGATION.md).

    ``accuracy`` and ``strength``: the newcomer prior (``prior_confusion``), also the
    pseudo-answers every fitted confusion row starts from. ``temper``: the power each vote's
    likelihood is raised to (1 = votes fully independent given the state; below 1 a vote counts
    for less, because annotators err together on hard clips: a harder scene misleads everyone
    at once). ``pass_share``: the PASS prior before the first fit.
    """

    accuracy: float = NEWCOMER_ACCURACY
    strength: float = NEWCOMER_STRENGTH
    temper: float = 1.0
    pass_share: float = PASS_PRIOR
    pooled: bool = False
    # Pseudo-votes at the crowd's accuracy that each group's (scene's) accuracy starts from;
    # 0 turns the scene term off.
    group_strength: float = 50.0
    # How far (log-odds) the unsettleable stop wants the best case above the target.
    stop_margin: float = 0.0
    # EM's relative tolerance for the fit: 1e-5 takes 13 iterations on 86,000 clips x 5 votes
    # where 1e-6 takes 44, and moves posteriors by about 1e-3.
    tol: float = 1e-5

    def newcomer(self, n_states: int) -> NDArray[np.float64]:
        table = prior_confusion(n_states, self.accuracy, self.strength)
        return table / table.sum(axis=1, keepdims=True)


@dataclass
class TrustModelArrays:
    """A fitted model of a campaign as arrays: the state prior and each worker's confusion."""

    priors: NDArray[np.float64]
    confusion: NDArray[np.float64]  # workers x K x K
    settings: TrustSettings = field(default_factory=TrustSettings)
    # What a worker without fitted votes is believed to answer (K x K, rows sum to 1).
    newcomer: NDArray[np.float64] | None = None
    # Per group of clips (scene): the shift of every voter's log-odds of answering right there.
    group_shift: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if self.newcomer is None:
            self.newcomer = self.settings.newcomer(len(self.priors))

    @classmethod
    def newcomers(
        cls, n_workers: int, settings: TrustSettings, n_states: int = 8
    ) -> TrustModelArrays:
        """The model before any fit: the default prior, every worker a newcomer."""
        conf = np.broadcast_to(settings.newcomer(n_states), (n_workers, n_states, n_states))
        return cls(default_priors(n_states, settings.pass_share), conf.copy(), settings)

    @classmethod
    def fit(
        cls,
        clip_idx: ArrayLike,
        worker_idx: ArrayLike,
        answer: ArrayLike,
        n_clips: int,
        n_workers: int,
        gold: ArrayLike | None,
        settings: TrustSettings,
        n_states: int = 8,
        clip_group: ArrayLike | None = None,
        n_groups: int = 0,
    ) -> TrustModelArrays:
        """Fit the prior and the confusions with Dawid-Skene from the newcomer prior, and
        with ``clip_group`` (each clip's scene) each group's accuracy shift."""
        if not len(np.asarray(clip_idx)):
            return cls.newcomers(n_workers, settings, n_states)
        prior = prior_confusion(n_states, settings.accuracy, settings.strength)
        newcomer = prior / prior.sum(axis=1, keepdims=True)
        if settings.pooled:
            # The crowd as one worker first: its confusion (which classes people mix up) is
            # what a newcomer is believed to answer and the prior every worker's rows start from.
            crowd = dawid_skene(
                clip_idx, np.zeros(len(np.asarray(clip_idx)), dtype=np.int64), answer,
                n_clips=n_clips, n_workers=1, n_classes=n_states, gold=gold,
                confusion_prior=prior,
            )  # fmt: skip
            newcomer = crowd.confusion[0]
            prior = newcomer * settings.strength
        result = dawid_skene(
            clip_idx, worker_idx, answer, n_clips=n_clips, n_workers=n_workers,
            n_classes=n_states, gold=gold, confusion_prior=prior, tol=settings.tol,
        )  # fmt: skip
        shift = None
        if clip_group is not None and settings.group_strength > 0 and n_groups:
            shift = group_shifts(
                result.posteriors, clip_idx, answer, clip_group, n_groups,
                settings.group_strength,
            )  # fmt: skip
        return cls(result.priors, result.confusion, settings, newcomer, shift)

    def log_joint(
        self,
        clip_idx: ArrayLike,
        worker_idx: ArrayLike,
        answer: ArrayLike,
        n_clips: int,
        vote_group: ArrayLike | None = None,
    ) -> NDArray[np.float64]:
        """Each clip's log prior plus its tempered vote log-likelihoods (n_clips x K)."""
        shift = None
        if self.group_shift is not None and vote_group is not None:
            groups = np.asarray(vote_group, dtype=np.int64)
            known = (groups >= 0) & (groups < len(self.group_shift))
            shift = np.where(
                known,
                self.group_shift[np.clip(groups, 0, None) % max(len(self.group_shift), 1)],
                0.0,
            )
        return tempered_log_joint(
            clip_idx, worker_idx, answer, n_clips, self.confusion, self.priors,
            self.settings.temper, shift,
        )  # fmt: skip

    def decide(
        self,
        clip_idx: ArrayLike,
        worker_idx: ArrayLike,
        answer: ArrayLike,
        total: ArrayLike,
        needed: ArrayLike | int,
        max_votes: ArrayLike | int,
        target: float,
        vote_group: ArrayLike | None = None,
    ) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.float64], NDArray[np.int64]]:
        """The confidence rule with the unsettleable stop (``decide_confident``)."""
        total = np.asarray(total, dtype=np.int64)
        joint = self.log_joint(clip_idx, worker_idx, answer, len(total), vote_group)
        return decide_confident(
            joint, total, needed, max_votes, target, self.newcomer, self.settings.temper,
            self.settings.stop_margin,
        )  # fmt: skip

    def can_settle(
        self,
        worker_idx: ArrayLike,
        answer: ArrayLike,
        max_votes: int,
        target: float,
        group: int = -1,
    ) -> bool:
        """Whether one clip with these votes could still reach ``target`` before the cap."""
        worker = np.asarray(worker_idx, dtype=np.int64)
        joint = self.log_joint(
            np.zeros(len(worker), dtype=np.int64), worker, answer, 1, np.full(len(worker), group)
        )
        best = best_reachable(
            joint, max(0, max_votes - len(worker)), self.newcomer, self.settings.temper
        )
        return bool(best[0] + _SHARE_TOL >= target)


def tempered_log_joint(
    clip_idx: ArrayLike,
    worker_idx: ArrayLike,
    answer: ArrayLike,
    n_clips: int,
    confusion: ArrayLike,
    priors: ArrayLike,
    temper: float = 1.0,
    vote_shift: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Return each clip's unnormalised log posterior (n_clips x K): log prior plus ``temper``
    times the sum of its votes' log confusion entries. Zero entries give -inf.

    ``vote_shift`` (one per vote, the vote's scene term) moves the voter's log-odds of
    answering right: under state k the vote is right with probability
    sigmoid(logit(confusion[w, k, k]) + shift), and its wrong answers keep their proportions.
    Raise
    ValueError on shapes that do not match, an index out of range or ``temper`` outside
    (0, 1]."""
    if not 0.0 < temper <= 1.0:
        raise ValueError("temper must lie in (0, 1]")
    conf, clip, worker, ans, n_clips, log_conf, log_prior = _checked_votes(
        clip_idx, worker_idx, answer, n_clips, confusion, priors
    )
    k, n_workers = conf.shape[1], conf.shape[0]
    # A vote's log-likelihood depends only on (voter, scene shift, answer): build that small
    # table once (voters x shifts x states x answers) and gather from it, instead of working
    # on every vote (86,000 clips x 5 votes: 0.65 s per vote, 0.05 s per table).
    if vote_shift is None:
        shifts, shift_idx = np.zeros(1), np.zeros(len(clip), dtype=np.int64)
    else:
        shift = np.broadcast_to(np.asarray(vote_shift, dtype=np.float64), clip.shape)
        shifts, shift_idx = np.unique(shift, return_inverse=True)
        shift_idx = shift_idx.reshape(-1)
    if len(shifts) * n_workers > max(4096, len(clip)):
        # Nearly one shift per vote: the table would be larger than the votes.
        per_vote = _per_vote_log_lik(conf, log_conf, worker, ans, shifts[shift_idx], k)
    else:
        table = _log_lik_table(conf, log_conf, shifts, k)  # [state, (worker, shift, answer)]
        combo = (worker * len(shifts) + shift_idx) * k + ans
        per_vote = table[:, combo]
    per_vote = per_vote * temper
    joint = np.stack([np.bincount(clip, weights=row, minlength=n_clips) for row in per_vote])
    return np.ascontiguousarray((joint + log_prior[:, None]).T)


def _shifted(conf: NDArray[np.float64], shift: NDArray[np.float64], k: int):
    """The right-answer probability of each confusion row moved by ``shift`` on the log-odds,
    and the diagonal it came from (both clipped away from 0 and 1)."""
    diag = np.clip(conf[..., np.arange(k), np.arange(k)], 1e-9, 1 - 1e-9)
    with np.errstate(divide="ignore", over="ignore"):
        right = 1.0 / (1.0 + np.exp(-(np.log(diag / (1 - diag)) + shift)))
    return right, diag


def _log_lik_table(conf, log_conf, shifts, k) -> NDArray[np.float64]:
    """log P(answer | state) for every voter, shift and answer: [state, flat (w, s, answer)].

    Under a shift the right answer's probability moves on the log-odds and the wrong answers
    keep their proportions (see ``tempered_log_joint``)."""
    n_workers, n_shifts = conf.shape[0], len(shifts)
    right, diag = _shifted(conf[:, None], shifts[None, :, None], k)  # w x s x state
    with np.errstate(divide="ignore"):
        wrong = np.log1p(-right) - np.log1p(-diag)  # w x s x state
        table = log_conf[:, None, :, :] + wrong[..., None]  # w x s x state x answer
        table[..., np.arange(k), np.arange(k)] = np.log(right)
    # With shift 0 the table is the confusion itself (no rounding from the round trip).
    zero = shifts == 0
    table[:, zero] = log_conf[:, None]
    return np.ascontiguousarray(table.transpose(2, 0, 1, 3).reshape(k, n_workers * n_shifts * k))


def _per_vote_log_lik(conf, log_conf, worker, ans, shift, k) -> NDArray[np.float64]:
    """log P(vote's answer | state) for each vote under its own shift: [state, vote]."""
    per_vote = log_conf[worker, :, ans].T
    right, diag = _shifted(conf[worker], shift[:, None], k)
    right, diag = right.T, diag.T
    with np.errstate(divide="ignore"):
        hit = np.arange(k)[:, None] == ans[None, :]
        moved = np.where(hit, np.log(right), per_vote + np.log1p(-right) - np.log1p(-diag))
    return np.where(shift[None, :] == 0, per_vote, moved)


def _normalise_log(joint: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows of log weights to probabilities; a row excluding every state falls back to
    uniform weights over the states the prior allows (handled by the caller's prior)."""
    peak = joint.max(axis=1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(under="ignore", invalid="ignore"):
        weights = np.exp(joint - peak)
    return _normalise(np.nan_to_num(weights), axis=1)


def best_case_confidence(
    joint: NDArray[np.float64], more: ArrayLike, newcomer: NDArray[np.float64], temper: float
) -> NDArray[np.float64]:
    """The posterior of each clip's top state if ``more`` further votes (per clip) all named
    that state, each from a newcomer: the most the votes still to come can do."""
    joint = np.asarray(joint, dtype=np.float64)
    more = np.broadcast_to(np.asarray(more, dtype=np.float64), (joint.shape[0],))
    top = joint.argmax(axis=1) if joint.size else np.zeros(0, dtype=np.int64)
    with np.errstate(divide="ignore"):
        log_new = np.log(newcomer)  # [true state, answer]
    # Each extra vote answers ``top``: under true state k it has probability newcomer[k, top].
    extra = log_new[:, top].T * (temper * more[:, None])
    post = _normalise_log(joint + extra)
    return post[np.arange(len(top)), top] if len(top) else np.zeros(0)


def best_reachable(
    joint: NDArray[np.float64], more: ArrayLike, newcomer: NDArray[np.float64], temper: float
) -> NDArray[np.float64]:
    """The highest posterior any state of each clip could reach if ``more`` further votes (per
    clip) all named that state, each from a newcomer: whether the clip can still settle, as
    trusted or (PASS) discarded, whichever state the votes to come would favour. The top
    state is not always the one closest to settling: two weak votes may lead a strong one."""
    joint = np.asarray(joint, dtype=np.float64)
    n, k = joint.shape if joint.ndim == 2 else (0, 0)
    if not n:
        return np.zeros(0)
    more = np.broadcast_to(np.asarray(more, dtype=np.float64), (n,))
    with np.errstate(divide="ignore"):
        log_new = np.log(newcomer)  # [true state, answer]
    best = np.zeros(n)
    for state in range(k):
        post = _normalise_log(joint + log_new[:, state][None, :] * (temper * more[:, None]))
        best = np.maximum(best, post[:, state])
    return best


def decide_confident(
    joint: NDArray[np.float64],
    total: ArrayLike,
    needed: ArrayLike | int,
    max_votes: ArrayLike | int,
    target: float,
    newcomer: NDArray[np.float64],
    temper: float = 1.0,
    margin: float = 0.0,
) -> tuple[NDArray[np.int8], NDArray[np.int8], NDArray[np.float64], NDArray[np.int64]]:
    """``decide_by_posterior`` on log joints, plus the unsettleable stop.

    A clip below the target and under its cap that could not reach the target whatever state
    every vote left up to the cap named (``best_reachable``) is DISPUTED at once, for review:
    no vote is asked that cannot settle it. ``margin`` (log-odds, >= 0) makes the stop demand
    that the best case clear the target by that much: the model is refitted as votes come, and
    a clip the current fit can barely settle is one a later fit may find hopeless.
    """
    post = _normalise_log(np.asarray(joint, dtype=np.float64))
    status, label, conf, votes_needed = decide_by_posterior(post, total, needed, max_votes, target)
    n = len(status)
    total = np.broadcast_to(np.asarray(total, dtype=np.int64), (n,))
    cap = np.broadcast_to(np.asarray(max_votes, dtype=np.int64), (n,))
    need = np.minimum(np.broadcast_to(np.asarray(needed, dtype=np.int64), (n,)), cap)
    asking = (status == COLLECTING) & (total >= need) & (total < cap)
    if asking.any():
        rows = np.flatnonzero(asking)
        best = best_reachable(joint[rows], cap[rows] - total[rows], newcomer, temper)
        line = target
        if margin > 0:
            line = 1.0 / (1.0 + math.exp(-(math.log(target / (1.0 - target)) + margin)))
        hopeless = rows[best + _SHARE_TOL < line]
        status[hopeless] = DISPUTED
        votes_needed[hopeless] = need[hopeless]
    return status, label, conf, votes_needed


def qualification_passed(correct: int, total: int, *, line: float, confidence: float) -> bool:
    """Whether a newcomer's qualification answers show, with this confidence, an accuracy
    above ``line``: P(accuracy > line) >= confidence under the Beta posterior."""
    return 1.0 - accuracy_below(correct, total, line) + _SHARE_TOL >= confidence


#: The qualification's verdicts: go on to real work, pause, or ask another gold clip.
QUALIFIED, NOT_QUALIFIED, QUALIFYING = "qualified", "failed", "qualifying"


def qualification_state(
    correct: int,
    total: int,
    *,
    clips: int,
    line: float = 0.4,
    fail_confidence: float = 0.9,
    pass_confidence: float = 0.5,
) -> str:
    """Where a newcomer stands after ``correct`` of ``total`` qualification (gold) answers.

    Before ``clips`` answers: QUALIFYING. Then, with the Beta posterior of ``accuracy_below``:
    NOT_QUALIFIED when P(accuracy < ``line``) >= ``fail_confidence``; QUALIFIED when it is at
    most ``pass_confidence`` (the accuracy is more likely above the line than below); in
    between another gold clip is asked, up to twice ``clips``, where the benefit of the doubt
    is given: QUALIFIED (the continuous gold check still watches them). With the defaults and
    10 clips: 0-1 right of 10 fails, 4 or more passes, 2-3 asks more (3 of 14 fails).
    """
    if clips <= 0:
        return QUALIFIED
    if total < clips:
        return QUALIFYING
    below = accuracy_below(correct, total, line)
    if below + _SHARE_TOL >= fail_confidence:
        return NOT_QUALIFIED
    if below <= pass_confidence + _SHARE_TOL or total >= 2 * clips:
        return QUALIFIED
    return QUALIFYING


def group_shifts(
    posteriors: ArrayLike,
    clip_idx: ArrayLike,
    answer: ArrayLike,
    clip_group: ArrayLike,
    n_groups: int,
    strength: float,
) -> NDArray[np.float64]:
    """Each group's (scene's) shift of the log-odds of a right answer, from fitted posteriors.

    A vote's expected rightness is its clip's posterior of the answer given. Per group, the
    share of right answers, starting from ``strength`` pseudo-votes at the crowd's share,
    against the crowd's share gives the shift: logit(group share) - logit(crowd share).
    """
    post = np.asarray(posteriors, dtype=np.float64)
    clip = np.asarray(clip_idx, dtype=np.int64)
    ans = np.asarray(answer, dtype=np.int64)
    groups = np.asarray(clip_group, dtype=np.int64)[clip]
    right = post[clip, ans]
    crowd = float(np.clip(right.mean() if len(right) else 0.5, 1e-6, 1 - 1e-6))
    ok = groups >= 0
    mass = np.bincount(groups[ok], weights=right[ok], minlength=n_groups)
    votes = np.bincount(groups[ok], minlength=n_groups)
    share = np.clip((mass + strength * crowd) / (votes + strength), 1e-6, 1 - 1e-6)
    return np.log(share / (1 - share)) - math.log(crowd / (1 - crowd))


def voter_accuracy(priors: ArrayLike, confusion: ArrayLike) -> NDArray[np.float64]:
    """Each voter's estimated accuracy: the right-answer rate of its confusion (W x K x K)
    over the classes (PASS, the last state, left out), weighted by the class prior."""
    conf = np.asarray(confusion, dtype=np.float64)
    prior = np.asarray(priors, dtype=np.float64)[:-1]
    k = len(prior)
    if not len(conf):
        return np.zeros(0)
    return conf[:, np.arange(k), np.arange(k)] @ (prior / prior.sum())


#: The share of the working voters the claim treats as informative (``informative_voters``).
INFORMATIVE_SHARE = 1 / 3


def informative_voters(
    accuracy: ArrayLike, working: ArrayLike, share: float = INFORMATIVE_SHARE
) -> NDArray[np.bool_]:
    """Which voters are rated informative: an estimated accuracy at or above the ``share``
    quantile from the top among the ``working`` voters (those who can still answer; numpy's
    linear quantile). With no voter working, every voter is."""
    acc = np.asarray(accuracy, dtype=np.float64)
    working = np.asarray(working, dtype=bool)
    if not working.any():
        return np.ones(len(acc), dtype=bool)
    return acc + _SHARE_TOL >= np.quantile(acc[working], 1.0 - share)
