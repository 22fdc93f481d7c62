"""The check that a campaign's trust rule never asks for votes that cannot settle a clip."""

import itertools

import numpy as np
import pytest

from annotations import agreement
from annotations.models import Campaign
from annotations.rules import unsettleable_example
from labelstudio_ferv.expressions import Answer


def check(v: int, m: int, a: float):
    return unsettleable_example(votes_per_clip=v, max_votes=m, min_agreement=a, answers=8)


def test_the_model_defaults_are_settleable():
    # The default is the confidence rule, which a 4th and 5th vote can settle; the plain
    # vote-share rule at the default share settles only when it stops at the first votes.
    fields = {f.name: f.default for f in Campaign._meta.concrete_fields}
    assert fields["aggregation"] == Campaign.Aggregation.CONFIDENCE
    assert (
        check(fields["votes_per_clip"], fields["votes_per_clip"], fields["min_agreement"]) is None
    )
    assert check(fields["votes_per_clip"], fields["max_votes"], fields["min_agreement"]) is not None


def test_three_votes_up_to_five_at_two_thirds_is_refused_with_the_1_1_1_split():
    found = check(3, 5, 2 / 3)
    assert found.split == (1, 1, 1) and found.best == (3, 1, 1)
    assert "with 3 votes split 1-1-1" in found.message()
    assert "3-1-1 (60%)" in found.message()


@pytest.mark.parametrize(
    ("v", "m", "a"), [(3, 3, 2 / 3), (2, 3, 2 / 3), (3, 4, 0.5), (3, 5, 0.4), (1, 1, 1.0)]
)
def test_rules_where_every_open_split_can_still_settle_pass(v, m, a):
    assert check(v, m, a) is None


def _settled_after_best(split: tuple, m: int, a: float) -> bool:
    """Brute force with agreement.decide: can any sequence of further votes settle ``split``?"""
    total = sum(split)
    for more in range(1, m - total + 1):
        for extra in itertools.combinations_with_replacement(range(len(Answer)), more):
            counts = list(split) + [0] * (len(Answer) - len(split))
            for answer in extra:
                counts[answer] += 1
            status, *_ = agreement.decide([counts], total + more, m, a)
            if status[0] in (agreement.TRUSTED, agreement.DISCARDED):
                return True
    return False


@pytest.mark.parametrize(("v", "m", "a"), [(3, 5, 2 / 3), (5, 7, 0.5), (2, 4, 0.75)])
def test_the_example_is_undecided_and_truly_unsettleable_by_decide(v, m, a):
    found = check(v, m, a)
    counts = list(found.split) + [0] * (len(Answer) - len(found.split))
    status, _, _, needed = agreement.decide([counts], v, m, a)
    assert status[0] == agreement.COLLECTING and needed[0] > sum(found.split)
    assert not _settled_after_best(found.split, m, a)


def test_refusal_matches_a_brute_force_over_small_rules():
    """For small rules, the search agrees with walking decide() over every vote sequence."""
    n = len(Answer)
    for v, m, a in itertools.product(range(1, 4), range(1, 5), (0.5, 0.6, 2 / 3, 1.0)):
        if m < v:
            continue
        stuck = False
        # Every sequence of up to m votes; walk while decide keeps asking for more.
        for seq in itertools.product(range(n), repeat=m):
            counts = np.zeros(n, dtype=int)
            for i, answer in enumerate(seq, start=1):
                counts[answer] += 1
                status, _, _, needed = agreement.decide([counts], v, m, a)
                if status[0] != agreement.COLLECTING or i < v:
                    if status[0] != agreement.COLLECTING:
                        break
                    continue
                split = tuple(sorted((c for c in counts if c), reverse=True))
                if i < m and not _settled_after_best(split, m, a):
                    stuck = True
                    break
            if stuck:
                break
        assert (check(v, m, a) is not None) == stuck, (v, m, a)


def test_numbers_out_of_range_raise():
    with pytest.raises(ValueError):
        check(4, 3, 0.5)
    with pytest.raises(ValueError):
        check(3, 31, 0.5)
