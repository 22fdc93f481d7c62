"""The bench-trust crowd without the HTTP API: a quick offline replay of the confidence rule.

The same simulated annotators as ``simulate.py`` (good, biased, tiring, colluding, careless,
spammers; harder scenes) label a campaign in one process, one answer at a time, with the claim
order of the application (the fullest open clip first, gold at the campaign's share, the
annotator's own gold order), batches of 100 judged on the Beta posterior of the gold answers,
pauses, and the confidence rule of ``annotations.agreement``. No database, no Django: it takes
seconds, so the rule's settings can be compared quickly. It is not the bench: ``make
bench-trust`` drives the real application. Run it with

    .venv/bin/python bench/trust_offline.py --clips 3000

and the last line printed is one JSON object (the same measures as the bench's final line).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from simulate import CONFUSED, Annotator, cell_weights  # noqa: E402

from annotations import agreement  # noqa: E402

N = 8
KINDS = (
    ["good"] * 20 + ["biased"] * 2 + ["tiring"] * 2 + ["colluding"] * 2 + ["careless"]
    + ["spammer"] * 3
)  # fmt: skip


def run(
    *,
    clips: int = 3000,
    seed: int = 39,
    refit_every: int = 0,
    qualification: int = 0,
    model: dict | None = None,
    votes_per_clip: int = 3,
    max_votes: int = 5,
    target: float = 0.97,
    gold_share: float = 0.05,
    keep: dict | None = None,
    informative: bool = False,
    true_model: bool = False,
    informative_share: float = agreement.INFORMATIVE_SHARE,
) -> dict:
    """Simulate one campaign; return the bench's measures.

    ``refit_every``: refit the model after this many votes (0: only at the end, as beat's
    10-minute recompute does in a bench run of a few minutes). ``qualification``: the first
    this many clips of each annotator are gold. ``model``: keyword arguments of
    ``agreement.TrustSettings``. ``keep``: a dict that receives the run's local variables
    (votes, truth, final model, statuses) for an analysis script. ``informative``: a clip
    that holds ``votes_per_clip`` votes or more (its next vote is an extra one) is served only
    to annotators the current model rates informative (``informative_workers``), unless the
    annotator has nothing else to do. ``true_model``: the crowd's true answer model
    (``TrueModel``) decides and rates instead of the fitted one: the policy's bound.
    """
    settings = agreement.TrustSettings(**(model or {}))
    rng = random.Random(seed)
    cells = cell_weights()
    weights = np.array([n for *_, n in cells], dtype=float)
    picks = np.random.default_rng(seed).choice(len(cells), size=clips, p=weights / weights.sum())
    truth = np.array([cells[i][1] for i in picks.tolist()])
    scenes = sorted({c[0] for c in cells})
    hard = {s: (0.15 if n % 4 == 0 else 0.0) for n, s in enumerate(scenes)}
    scene_of = np.array([scenes.index(cells[i][0]) for i in picks.tolist()])
    difficulty = np.array([hard[scenes[s]] for s in scene_of])
    is_gold = np.array([rng.random() < gold_share for _ in range(clips)])
    draw = np.array([rng.random() for _ in range(clips)])
    people = [Annotator(k, random.Random(seed + n)) for n, k in enumerate(KINDS)]
    w_count = len(people)
    gold_ids = np.flatnonzero(is_gold)
    gold_orders = []
    for w in range(w_count):
        order = gold_ids.tolist()
        random.Random(seed * 1000 + w).shuffle(order)
        gold_orders.append(order)

    votes: list[list[int]] = [[] for _ in range(clips)]  # vote ids per clip
    v_clip, v_worker, v_answer, v_valid = [], [], [], []
    v_extra = []  # whether the vote was an extra one (its clip held votes_per_clip or more)
    needed = np.full(clips, votes_per_clip)
    status = np.zeros(clips, dtype=int)
    label = np.full(clips, -1)
    voted = np.zeros((w_count, clips), dtype=bool)
    count = np.zeros(clips, dtype=int)
    served = np.zeros(w_count, dtype=int)
    gold_served = np.zeros(w_count, dtype=int)
    gold_right = np.zeros(w_count, dtype=int)
    gold_total = np.zeros(w_count, dtype=int)
    unbatched: list[list[int]] = [[] for _ in range(w_count)]
    pending: list[list[list[int]]] = [[] for _ in range(w_count)]
    paused = np.zeros(w_count, dtype=bool)
    answers = np.zeros(w_count, dtype=int)
    answers_at_pause = {}
    qualified = np.zeros(w_count, dtype=bool) if qualification else np.ones(w_count, dtype=bool)
    fitted = agreement.TrustModelArrays.newcomers(w_count, settings)
    since_fit = 0
    is_hard = np.array([hard[s] > 0 for s in scenes])
    rated = np.ones(w_count, dtype=bool)  # no ratings before the first fit: anyone

    def refit():
        if true_model:
            return TrueModel(people, is_hard, truth, settings)
        return _fit(v_clip, v_worker, v_answer, v_valid, clips, w_count, is_gold, truth,
                    settings, scene_of, len(scenes))  # fmt: skip

    if true_model:
        fitted = refit()

    def decide(ids: np.ndarray) -> None:
        sel = np.isin(np.array(v_clip), ids) & np.array(v_valid, dtype=bool)
        local = np.searchsorted(ids, np.array(v_clip)[sel])
        st, lab, _, need = fitted.decide(
            local, np.array(v_worker)[sel], np.array(v_answer)[sel],
            np.bincount(local, minlength=len(ids)), votes_per_clip, max_votes, target,
            scene_of[np.array(v_clip)[sel]],
        )  # fmt: skip
        keep = is_gold[ids]
        status[ids] = np.where(keep, status[ids], st)
        label[ids] = np.where(keep, label[ids], lab)
        needed[ids] = np.where(keep, needed[ids], need)

    def invalidate(vote_ids: list[int]) -> None:
        touched = set()
        for v in vote_ids:
            if v_valid[v]:
                v_valid[v] = False
                count[v_clip[v]] -= 1
                touched.add(v_clip[v])
        if touched:
            decide(np.array(sorted(touched)))

    def pause(w: int) -> None:
        paused[w] = True
        answers_at_pause[w] = int(answers[w])
        invalidate(unbatched[w] + [v for b in pending[w] for v in b])
        unbatched[w], pending[w] = [], []

    def verdict(w: int) -> str:
        return agreement.score_annotator(int(gold_right[w]), int(gold_total[w]), confidence=0.97)

    active = list(range(w_count))
    idle = np.zeros(w_count, dtype=int)
    while active:
        w = rng.choice(active)
        person = people[w]
        quali = not qualified[w]
        due = quali or rng.random() < gold_share * (served[w] + 1) - gold_served[w]
        clip = -1
        if due:
            while gold_orders[w]:
                g = gold_orders[w].pop(0)
                if not voted[w, g]:
                    clip = g
                    break
        gold = clip >= 0
        if not gold and not quali:
            open_ = (~is_gold) & (status == 0) & (count < needed) & ~voted[w]
            if informative and not rated[w]:
                first = open_ & (count < votes_per_clip)
                if first.any():  # extra votes only when nothing else is left
                    open_ = first
            cand = np.flatnonzero(open_)
            if len(cand):
                best = cand[np.lexsort((draw[cand], -count[cand]))[0]]
                clip = int(best)
        if clip < 0:
            if quali:
                qualified[w] = True  # no gold left: nothing to qualify on
                continue
            idle[w] += 1
            if idle[w] > 2:
                active.remove(w)
            continue
        idle[w] = 0
        served[w] += 1
        gold_served[w] += int(gold)
        answers[w] += 1
        answer = person.answer(int(truth[clip]), clip, float(difficulty[clip]))
        voted[w, clip] = True
        vid = len(v_clip)
        v_extra.append(bool(count[clip] >= votes_per_clip) and not gold)
        v_clip.append(clip), v_worker.append(w), v_answer.append(answer), v_valid.append(True)
        votes[clip].append(vid)
        count[clip] += 1
        unbatched[w].append(vid)
        if gold:
            gold_total[w] += 1
            gold_right[w] += int(answer == truth[clip])
            state = agreement.qualification_state(
                int(gold_right[w]), int(gold_total[w]), clips=qualification
            )
            if quali and state == agreement.QUALIFIED:
                qualified[w] = True
            if verdict(w) == "unacceptable" or (quali and state == agreement.NOT_QUALIFIED):
                pause(w)
                active.remove(w)
                continue
        else:
            decide(np.array([clip]))
        if len(unbatched[w]) >= 100:
            v = verdict(w)
            if v == "improper":
                pending[w].append(unbatched[w])
            unbatched[w] = []
        since_fit += 1
        if refit_every and since_fit >= refit_every:
            since_fit = 0
            fitted = refit()
            if informative:
                working = np.array([w in active and not paused[w] and voted[w].any()
                                    for w in range(w_count)])  # fmt: skip
                rated = informative_workers(fitted, working, informative_share)
            decide(np.arange(clips))

    for _ in range(2):  # the recomputes at the end
        fitted = refit()
        decide(np.arange(clips))
    plain = ~is_gold
    if keep is not None:
        keep.update(locals())
    trusted = (status == 1) & plain
    right = trusted & (label == truth)
    valid = np.array(v_valid, dtype=bool)
    vc = np.array(v_clip)
    plain_votes = int((plain[vc]).sum())
    true_acc = np.array([p.accuracy for p in people])
    ex, vw = np.array(v_extra, dtype=bool), np.array(v_worker)
    extra_votes_by_rated = {
        "extra_votes": int(ex.sum()),
        "mean_true_accuracy_extra": round(float(true_acc[vw[ex]].mean()), 3) if ex.any() else 0,
        "mean_true_accuracy_first": round(float(true_acc[vw[~ex & plain[vc]]].mean()), 3),
    }
    spam = [w for w in range(w_count) if KINDS[w] == "spammer"]
    good = [w for w in range(w_count) if KINDS[w] == "good"]
    return {
        "trusted_precision": round(float(right.sum() / max(1, trusted.sum())), 4),
        "trusted_share": round(float(trusted.sum() / plain.sum()), 4),
        "votes_per_trusted_clip": round(plain_votes / max(1, trusted.sum()), 3),
        "disputed_share": round(float(((status == 2) & plain).sum() / plain.sum()), 4),
        "collecting_share": round(float(((status == 0) & plain).sum() / plain.sum()), 4),
        "unsettleable_votes": _unsettleable(
            votes,
            v_worker,
            v_answer,
            valid,
            fitted,
            plain,
            votes_per_clip,
            max_votes,
            target,
            scene_of,
        ),
        "shifts": None if fitted.group_shift is None else np.round(fitted.group_shift, 2).tolist(),
        "hard": [hard[s] for s in scenes],
        "spammer_answers_at_pause": sorted(answers_at_pause.get(w, -1) for w in spam),
        "good_annotators_paused": sum(1 for w in good if paused[w]),
        "paused": [KINDS[w] for w in range(w_count) if paused[w]],
        "votes": len(v_clip),
        "valid_votes": int(valid.sum()),
        "extra_votes_by_rated": extra_votes_by_rated,
    }


def informative_workers(
    model, working: np.ndarray, share: float = agreement.INFORMATIVE_SHARE
) -> np.ndarray:
    """The annotators rated informative (``agreement.informative_voters``, as the application
    rates its members at each fit): estimated accuracy in the top ``share`` of those still
    working."""
    if hasattr(model, "accuracy"):
        acc = model.accuracy()
    else:
        acc = agreement.voter_accuracy(model.priors, model.confusion)
    return agreement.informative_voters(acc, working, share)


def _answer_row(kind: str, t: int, acc: float) -> np.ndarray:
    """What a (non-spamming) simulated annotator of ``kind``, right with probability ``acc``,
    answers on a clip of true class ``t`` (simulate.Annotator.answer, as probabilities)."""
    p = np.zeros(N)
    p[7], p[t] = 0.02, acc
    rest = max(0.0, 0.98 - acc)
    if kind == "biased":
        p[4] += rest * 0.7
        rest *= 0.3
    if t in CONFUSED:
        p[CONFUSED[t]] += rest * 0.6
        rest *= 0.4
    p[[c for c in range(7) if c != t]] += rest / 6
    return p


def true_confusion(person, difficulty: float) -> np.ndarray:
    """What a simulated annotator answers under each true state (8 x 8; PASS row uniform)."""
    table = np.full((N, N), 1 / N)
    if person.kind == "spammer":
        return table
    drop = min(0.45, person.answers / 1000) if person.kind == "tiring" else 0.0
    acc = max(0.0, person.accuracy - difficulty - drop)
    for t in range(7):
        p = _answer_row(person.kind, t, acc)
        if person.kind == "colluding":  # a third of the clips: the pair's shared wrong answer
            other = np.zeros(N)
            other[[c for c in range(7) if c != t]] = 1 / 6
            p = p * 2 / 3 + other / 3
        table[t] = np.maximum(p, 1e-6) / np.maximum(p, 1e-6).sum()
    return table


class TrueModel:
    """The crowd's true answer model in the fitted model's place (decide, can_settle): each
    annotator's confusion in an ordinary and in a hard scene (the tiring ones at their drop of
    the moment), the true class balance. Votes are still taken as independent."""

    def __init__(self, people, is_hard, truth, settings):
        self.people, self.is_hard = people, np.asarray(is_hard)
        conf = np.stack([true_confusion(p, d) for p in people for d in (0.0, 0.15)])
        prior = np.append(np.bincount(truth, minlength=7) + 1.0, 1.0)
        self.inner = agreement.TrustModelArrays(prior / prior.sum(), conf, settings)
        self.group_shift = None

    def _virtual(self, worker, group):
        return 2 * np.asarray(worker, dtype=np.int64) + self.is_hard[np.asarray(group)]

    def accuracy(self) -> np.ndarray:
        return np.array([true_confusion(p, 0.0)[:7].trace() / 7 for p in self.people])

    def decide(self, clip_idx, worker_idx, answer, total, needed, max_votes, target, group):
        return self.inner.decide(
            clip_idx, self._virtual(worker_idx, group), answer, total, needed, max_votes, target
        )

    def can_settle(self, worker_idx, answer, max_votes, target, group=-1):
        worker = self._virtual(worker_idx, np.full(len(worker_idx), group))
        return self.inner.can_settle(worker, answer, max_votes, target)


def _fit(v_clip, v_worker, v_answer, v_valid, clips, w_count, is_gold, truth, settings,
         scene_of, n_scenes):  # fmt: skip
    valid = np.array(v_valid, dtype=bool)
    return agreement.TrustModelArrays.fit(
        np.array(v_clip)[valid], np.array(v_worker)[valid], np.array(v_answer)[valid],
        clips, w_count, np.where(is_gold, truth, -1), settings, clip_group=scene_of,
        n_groups=n_scenes,
    )  # fmt: skip


def _unsettleable(votes, v_worker, v_answer, valid, fitted, plain, lo, hi, target, scene_of):
    wasted = 0
    for clip in np.flatnonzero(plain).tolist():
        ids = [v for v in votes[clip] if valid[v]]
        for n in range(lo, len(ids)):
            head = ids[:n]
            ws = np.array([v_worker[v] for v in head])
            ans = np.array([v_answer[v] for v in head])
            if not fitted.can_settle(ws, ans, hi, target, int(scene_of[clip])):
                wasted += len(ids) - n
                break
    return wasted


def oracle(keep: dict) -> dict:
    """Re-decide a run's final valid votes with the crowd's true answer model (each simulated
    annotator's accuracy, confusions and scene difficulty; the tiring ones at their mean drop,
    the colluding pair as if independent): what any rule could do on those votes."""
    valid = np.array(keep["v_valid"], dtype=bool)
    clip = np.array(keep["v_clip"])[valid]
    worker = np.array(keep["v_worker"])[valid]
    answer = np.array(keep["v_answer"])[valid]
    truth, plain, people = keep["truth"], keep["plain"], keep["people"]
    log_post = np.zeros((keep["clips"], 7))
    for c, w, a in zip(clip.tolist(), worker.tolist(), answer.tolist(), strict=True):
        person = people[w]
        for t in range(7):
            if person.kind == "spammer":
                log_post[c, t] += np.log(1 / 8)
                continue
            acc = max(0.0, person.accuracy - keep["difficulty"][c]
                      - (0.2 if person.kind == "tiring" else 0.0))  # fmt: skip
            p = _answer_row(person.kind, t, acc)
            log_post[c, t] += np.log(max(p[a], 1e-12))
    post = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    top, conf = post.argmax(axis=1)[plain], post.max(axis=1)[plain]
    right = top == truth[plain]
    order = np.argsort(-conf, kind="stable")
    running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    out = {}
    for target in (0.96, 0.97):
        ok = np.flatnonzero(running >= target)
        out[f"share_at_precision_{target}"] = round((ok[-1] + 1) / len(order), 4) if len(ok) else 0
    sure = conf >= 0.97
    out["share_at_posterior_097"] = round(float(sure.mean()), 4)
    out["precision_at_posterior_097"] = round(float(right[sure].mean()), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=39)
    parser.add_argument("--refit-every", type=int, default=0)
    parser.add_argument("--qualification", type=int, default=0)
    parser.add_argument("--model", default="{}", help="TrustSettings as JSON")
    parser.add_argument("--max-votes", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.97)
    parser.add_argument("--oracle", action="store_true", help="add the true model's bound")
    parser.add_argument("--votes-per-clip", type=int, default=3)
    parser.add_argument(
        "--informative", action="store_true", help="extra votes only from rated annotators"
    )
    parser.add_argument(
        "--informative-share",
        type=float,
        default=agreement.INFORMATIVE_SHARE,
        help="share of the working annotators rated informative",
    )
    parser.add_argument(
        "--true-model", action="store_true", help="the true model decides and rates (bound)"
    )
    args = parser.parse_args()
    keep: dict = {}
    result = run(
        clips=args.clips, seed=args.seed, refit_every=args.refit_every,
        qualification=args.qualification, model=json.loads(args.model),
        max_votes=args.max_votes, target=args.target, keep=keep,
        votes_per_clip=args.votes_per_clip, informative=args.informative,
        true_model=args.true_model, informative_share=args.informative_share,
    )  # fmt: skip
    if args.oracle:
        result["oracle"] = oracle(keep)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
