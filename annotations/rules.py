"""Checks on a campaign's trust rule that need no database: can more votes ever settle a clip?

``agreement.decide`` asks a clip that is not yet settled for one more vote at a time, up to
``max_votes``. A rule may ask for votes that can never change the outcome: with 3 votes per clip,
at most 5 and a 2/3 share, a clip split 1-1-1 can reach at best 3-1-1 (60%) and ends disputed
whatever the 4th and 5th annotators answer. Those votes cost annotator time for nothing, so such
a rule is refused when a campaign is created or edited.

Pure Python (no Django, no numpy): the service that validates a campaign calls it with the
number of answers (classes and PASS).
"""

from __future__ import annotations

from dataclasses import dataclass

# The same slack agreement.decide allows, so that 2 of 3 meets 2/3 here too.
_SHARE_TOL = 1e-9
# Beyond this many votes the search below grows too large to run in a request; no campaign
# needs more (FERV39k used 3 votes per clip).
MAX_VOTES_CHECKED = 30


@dataclass(frozen=True)
class Unsettleable:
    """A reachable vote split that the rule leaves open, and the best the remaining votes give."""

    split: tuple[int, ...]  # vote counts of the answers that got votes, largest first
    best: tuple[int, ...]  # the split after every remaining vote went to the leading answer
    best_share: float
    max_votes: int
    min_agreement: float

    def message(self) -> str:
        votes = sum(self.split)
        more = sum(self.best) - votes
        return (
            f"These rules ask for votes that can never settle a clip: with {votes} votes split "
            f"{_dash(self.split)}, the {more} more vote{'s' if more > 1 else ''} max_votes "
            f"allows give at best {_dash(self.best)} ({self.best_share:.0%}), below "
            f"min_agreement {self.min_agreement:.0%}, so the clip ends disputed anyway. Lower "
            f"max_votes (to votes_per_clip for no extra votes) or lower min_agreement."
        )


def _dash(counts: tuple[int, ...]) -> str:
    return "-".join(str(c) for c in counts)


def _settled(counts: tuple[int, ...], total: int, min_agreement: float) -> bool:
    """Return whether ``decide`` settles a split (trusted or discarded): a strict leader with
    at least ``min_agreement`` of the votes. ``counts`` is sorted, largest first."""
    top = counts[0]
    strict = len(counts) < 2 or counts[1] < top
    return strict and top / total + _SHARE_TOL >= min_agreement


def _splits(total: int, parts: int, largest: int) -> list[tuple[int, ...]]:
    """Return every split of ``total`` votes over at most ``parts`` answers, largest first."""
    if total == 0:
        return [()]
    if parts == 0:
        return []
    found = []
    for first in range(min(total, largest), 0, -1):
        found += [(first, *rest) for rest in _splits(total - first, parts - 1, first)]
    return found


def unsettleable_example(
    *, votes_per_clip: int, max_votes: int, min_agreement: float, answers: int
) -> Unsettleable | None:
    """Return a reachable unsettled split that no further votes can settle, or None.

    A clip collects ``votes_per_clip`` votes (any split of them can happen), then, while not
    settled and below ``max_votes``, one more vote at a time. Every split reachable that way is
    searched (splits are kept sorted: which answer leads does not matter, PASS included, as a
    PASS majority settles a clip too, as discarded). From a split with ``t`` votes and leading
    count ``top``, the best the remaining ``max_votes - t`` votes can do is all go to the
    leader, giving ``(top + max_votes - t) / max_votes``, and fewer votes give less; when even
    that is below ``min_agreement`` the split is returned (the one with the fewest votes,
    then the most even). ``answers`` is the number of possible answers (classes and PASS).
    Raise ValueError when ``max_votes`` exceeds ``MAX_VOTES_CHECKED`` or the numbers are
    inconsistent.
    """
    if not 1 <= votes_per_clip <= max_votes:
        raise ValueError("need 1 <= votes_per_clip <= max_votes")
    if max_votes > MAX_VOTES_CHECKED:
        raise ValueError(f"max_votes above {MAX_VOTES_CHECKED} is not checked")
    if not 0 < min_agreement <= 1 or answers < 1:
        raise ValueError("need 0 < min_agreement <= 1 and answers >= 1")
    level = {
        s
        for s in _splits(votes_per_clip, answers, votes_per_clip)
        if not _settled(s, votes_per_clip, min_agreement)
    }
    for total in range(votes_per_clip, max_votes):
        # Most even first: the split with the smallest leader is the hardest to settle.
        for split in sorted(level, key=lambda s: (s[0], -len(s))):
            more = max_votes - total
            if (split[0] + more) / max_votes + _SHARE_TOL < min_agreement:
                best = (split[0] + more, *split[1:])
                return Unsettleable(split, best, best[0] / max_votes, max_votes, min_agreement)
        following = set()
        for split in level:
            grown = {
                tuple(sorted((*split[:i], split[i] + 1, *split[i + 1 :]), reverse=True))
                for i in range(len(split))
            }
            if len(split) < answers:
                grown.add((*split, 1))
            following |= {s for s in grown if not _settled(s, total + 1, min_agreement)}
        level = following
    return None
