"""Tests for annotations.agreement: published reference values, edge cases, cross-checks.

The module under test is pure numpy, so these tests need no database and no Django settings.
"""

import math
import warnings

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annotations import agreement as ag
from labelstudio_ferv.expressions import CLASS_KEYS, N_ANSWERS, N_CLASSES, PASS

nan = float("nan")

# --------------------------------------------------------------------------------------------
# Reference data (published examples)
# --------------------------------------------------------------------------------------------

A = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
B = [[1, 1, 2, 2, 4, 3, 3, 3, 5, 4, 4, 1], [2, 1, 2, 2, 2, 3, 3, 3, 5, 4, 4, 4]]
C = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
]
W = [
    [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
    [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
    [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
]
VC = [
    [1, 0, 0, 0], [0, 0, 0, 0], [0, 2, 0, 0], [2, 0, 0, 0], [0, 0, 2, 0],
    [0, 0, 2, 1], [0, 0, 0, 3], [1, 0, 1, 0], [0, 2, 0, 0], [2, 0, 0, 0],
    [2, 0, 0, 0], [0, 0, 2, 0], [0, 0, 2, 0], [0, 0, 0, 0], [0, 0, 1, 1],
]  # fmt: skip
FW = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip
# Psychiatric diagnoses (Fleiss 1971): rows = subjects, columns = the six raters.
DIAGNOSES = [
    [4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
    [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
    [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
    [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
    [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
    [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
    [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
    [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5],
]  # fmt: skip
# crowd-kit toy data as (task, worker, label): alpha 4/9, or 1.0 without task Z.
XYZ = [
    ("X", "A", "Yes"),
    ("X", "B", "Yes"),
    ("Y", "A", "No"),
    ("Y", "B", "No"),
    ("Z", "A", "Yes"),
    ("Z", "B", "No"),
]
# crowd-kit toy_ysda as (worker, task, label): alpha 61/429.
TOY_YSDA = [
    ("w1", "t1", "no"),
    ("w1", "t2", "yes"),
    ("w1", "t3", "yes"),
    ("w1", "t4", "yes"),
    ("w1", "t5", "yes"),
    ("w2", "t1", "yes"),
    ("w2", "t2", "yes"),
    ("w2", "t3", "no"),
    ("w2", "t4", "yes"),
    ("w2", "t5", "no"),
    ("w3", "t2", "yes"),
    ("w3", "t3", "no"),
    ("w3", "t4", "yes"),
    ("w3", "t5", "no"),
    ("w4", "t1", "yes"),
    ("w4", "t2", "no"),
    ("w4", "t3", "yes"),
    ("w4", "t4", "yes"),
    ("w4", "t5", "no"),
    ("w5", "t1", "no"),
    ("w5", "t2", "no"),
    ("w5", "t3", "no"),
    ("w5", "t4", "yes"),
    ("w5", "t5", "no"),
]

# Dawid & Skene (1979), Table 1: {patient: {observer: [ratings]}}; observer 1 rated 3 times.
DS1979 = {
    1: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    2: {1: [3, 3, 3], 2: [4], 3: [3], 4: [3], 5: [4]},
    3: {1: [1, 1, 2], 2: [2], 3: [1], 4: [2], 5: [2]},
    4: {1: [2, 2, 2], 2: [3], 3: [1], 4: [2], 5: [1]},
    5: {1: [2, 2, 2], 2: [3], 3: [2], 4: [2], 5: [2]},
    6: {1: [2, 2, 2], 2: [3], 3: [3], 4: [2], 5: [2]},
    7: {1: [1, 2, 2], 2: [2], 3: [1], 4: [1], 5: [1]},
    8: {1: [3, 3, 3], 2: [3], 3: [4], 4: [3], 5: [3]},
    9: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [3]},
    10: {1: [2, 3, 2], 2: [2], 3: [2], 4: [2], 5: [3]},
    11: {1: [4, 4, 4], 2: [4], 3: [4], 4: [4], 5: [4]},
    12: {1: [2, 2, 2], 2: [3], 3: [3], 4: [4], 5: [3]},
    13: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    14: {1: [2, 2, 2], 2: [3], 3: [2], 4: [1], 5: [2]},
    15: {1: [1, 2, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    16: {1: [1, 1, 1], 2: [2], 3: [1], 4: [1], 5: [1]},
    17: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    18: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    19: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [1]},
    20: {1: [2, 2, 2], 2: [1], 3: [3], 4: [2], 5: [2]},
    21: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [2]},
    22: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [1]},
    23: {1: [2, 2, 2], 2: [3], 3: [2], 4: [2], 5: [2]},
    24: {1: [2, 2, 1], 2: [2], 3: [2], 4: [2], 5: [2]},
    25: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    26: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    27: {1: [2, 3, 2], 2: [2], 3: [2], 4: [2], 5: [2]},
    28: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    29: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    30: {1: [1, 1, 2], 2: [1], 3: [1], 4: [2], 5: [1]},
    31: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    32: {1: [3, 3, 3], 2: [3], 3: [2], 4: [3], 5: [3]},
    33: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    34: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [2]},
    35: {1: [2, 2, 2], 2: [3], 3: [2], 4: [3], 5: [2]},
    36: {1: [4, 3, 3], 2: [4], 3: [3], 4: [4], 5: [3]},
    37: {1: [2, 2, 1], 2: [2], 3: [2], 4: [3], 5: [2]},
    38: {1: [2, 3, 2], 2: [3], 3: [2], 4: [3], 5: [3]},
    39: {1: [3, 3, 3], 2: [3], 3: [4], 4: [3], 5: [2]},
    40: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    41: {1: [1, 1, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    42: {1: [1, 2, 1], 2: [2], 3: [1], 4: [1], 5: [1]},
    43: {1: [2, 3, 2], 2: [2], 3: [2], 4: [2], 5: [2]},
    44: {1: [1, 2, 1], 2: [1], 3: [1], 4: [1], 5: [1]},
    45: {1: [2, 2, 2], 2: [2], 3: [2], 4: [2], 5: [2]},
}
# Dawid-Skene MAP classes for patients 1..45 (1-based), from EM run to convergence.
DS1979_MAP = [
    1, 4, 2, 2, 2, 2, 1, 3, 2, 2, 4, 3, 1, 2, 1, 1, 1, 1, 2, 2, 2, 2, 2,
    2, 1, 1, 2, 1, 1, 1, 1, 3, 1, 2, 2, 4, 2, 3, 3, 1, 1, 1, 2, 1, 2,
]  # fmt: skip
DS1979_MARGINALS = [0.400, 0.422, 0.112, 0.067]
DS1979_OBSERVER1 = [
    [0.889, 0.111, 0.0, 0.0],
    [0.071, 0.876, 0.053, 0.0],
    [0.0, 0.339, 0.661, 0.0],
    [0.0, 0.0, 0.556, 0.444],
]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def long_to_reliability(rows: list[tuple[str, str, str]], unit_first: bool) -> np.ndarray:
    """Pivot (unit, coder, value) or (coder, unit, value) rows into a coders x units matrix."""
    if unit_first:
        rows = [(coder, unit, value) for unit, coder, value in rows]
    coders = sorted({r[0] for r in rows})
    units = sorted({r[1] for r in rows})
    out = np.full((len(coders), len(units)), "nan", dtype="<U8")
    for coder, unit, value in rows:
        out[coders.index(coder), units.index(unit)] = value
    return out


def ratings_to_counts(subjects_by_raters: list[list[int]], values: list[int]) -> np.ndarray:
    """Turn a subjects x raters matrix of values into subjects x categories counts."""
    data = np.asarray(subjects_by_raters)
    return np.stack([(data == v).sum(axis=1) for v in values], axis=1)


def counts_row(**answers: int) -> list[int]:
    """Return an 8-slot count row from keyword counts (class keys and ``pass_``)."""
    row = [0] * N_ANSWERS
    for key, n in answers.items():
        row[PASS if key == "pass_" else CLASS_KEYS.index(key)] = n
    return row


def ds1979_votes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the 1979 data as 0-based (clip, worker, answer) vote arrays."""
    rows = [
        (patient - 1, observer - 1, rating - 1)
        for patient, by_observer in DS1979.items()
        for observer, ratings in by_observer.items()
        for rating in ratings
    ]
    clip, worker, answer = (np.array(col) for col in zip(*rows, strict=True))
    return clip, worker, answer


def assert_non_decreasing(trace: list[float]) -> None:
    """Fail if the objective ever drops by more than floating-point noise."""
    values = np.asarray(trace)
    assert values.size >= 1
    assert np.all(np.isfinite(values))
    drops = np.diff(values)
    assert np.all(drops >= -1e-9 * np.maximum(1.0, np.abs(values[1:]))), drops.min()


# --------------------------------------------------------------------------------------------
# Krippendorff's alpha
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [(A, 2 / 21), (B, 155 / 224), (C, 113 / 152), (W, 56 / 81)],
    ids=["A", "B", "C", "W"],
)
def test_alpha_reliability_reference_values(data: list, expected: float) -> None:
    assert ag.krippendorff_nominal(np.array(data, dtype=float)) == pytest.approx(
        expected, abs=1e-12
    )


def test_alpha_rounded_published_values() -> None:
    assert round(ag.krippendorff_nominal(np.array(A, dtype=float)), 3) == 0.095
    assert round(ag.krippendorff_nominal(np.array(B, dtype=float)), 3) == 0.692
    assert round(ag.krippendorff_nominal(np.array(C, dtype=float)), 3) == 0.743
    assert round(ag.krippendorff_nominal(np.array(W, dtype=float)), 3) == 0.691


def test_alpha_integer_reliability_matrix() -> None:
    assert ag.krippendorff_nominal(np.array(B)) == pytest.approx(155 / 224, abs=1e-12)


def test_alpha_is_nominal_not_the_package_default_interval() -> None:
    interval = krippendorff.alpha(reliability_data=B)  # the package defaults to "interval"
    assert interval == pytest.approx(0.6203, abs=5e-5)
    assert ag.krippendorff_nominal(np.array(B, dtype=float)) == pytest.approx(0.692, abs=5e-4)


def test_alpha_from_value_counts() -> None:
    assert ag.krippendorff_nominal_from_counts(np.array(VC)) == pytest.approx(0.691358, abs=1e-6)
    assert ag.krippendorff_nominal_from_counts(VC) == pytest.approx(56 / 81, abs=1e-12)


def test_alpha_on_fleiss_tables() -> None:
    assert ag.krippendorff_nominal_from_counts(FW) == pytest.approx(0.2155740565, abs=1e-9)
    diag_counts = ratings_to_counts(DIAGNOSES, [1, 2, 3, 4, 5])
    assert ag.krippendorff_nominal_from_counts(diag_counts) == pytest.approx(0.4334098283, abs=1e-9)
    # Same data as raters x subjects reliability matrix.
    reliability = np.array(DIAGNOSES, dtype=float).T
    assert ag.krippendorff_nominal(reliability) == pytest.approx(0.4334098283, abs=1e-9)


def test_alpha_crowd_kit_toys_with_strings() -> None:
    xyz = long_to_reliability(XYZ, unit_first=True)
    assert ag.krippendorff_nominal(xyz) == pytest.approx(4 / 9, abs=1e-12)
    xy = long_to_reliability([r for r in XYZ if r[0] != "Z"], unit_first=True)
    assert ag.krippendorff_nominal(xy) == pytest.approx(1.0, abs=1e-12)
    toy = long_to_reliability(TOY_YSDA, unit_first=False)
    assert (toy == "nan").sum() == 1  # w3 did not label t1
    assert ag.krippendorff_nominal(toy) == pytest.approx(61 / 429, abs=1e-12)


def test_alpha_string_matrix_with_float_nan() -> None:
    assert ag.krippendorff_nominal([["A", "B"], ["B", "A"]]) == pytest.approx(-0.5, abs=1e-12)
    data = np.asarray([["A", "B", nan], ["A", "B", "B"]])  # NaN becomes the string "nan"
    assert ag.krippendorff_nominal(data) == pytest.approx(1.0, abs=1e-12)


def test_alpha_edge_all_agree_but_one() -> None:
    data = np.full((5, 5), 3.0)
    data[2, 4] = 1.0
    assert ag.krippendorff_nominal(data) == pytest.approx(0.0, abs=1e-12)


def test_alpha_perfect_agreement() -> None:
    assert ag.krippendorff_nominal([[1, 2, 3], [1, 2, 3]]) == pytest.approx(1.0, abs=1e-12)


def test_alpha_zero_expected_disagreement_is_nan_without_warning() -> None:
    # The package itself divides 0 by 0 here (domain [1, 2], only 1s used) and warns.
    with pytest.warns(RuntimeWarning):
        raw = krippendorff.alpha(
            reliability_data=[[1, 1, 1], [1, 1, 1]],
            value_domain=[1, 2],
            level_of_measurement="nominal",
        )
    assert math.isnan(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(ag.krippendorff_nominal([[1, 1, 1], [1, 1, 1]]))
        assert math.isnan(ag.krippendorff_nominal_from_counts([[2, 0], [2, 0], [2, 0]]))
        assert math.isnan(ag.krippendorff_nominal_from_counts([[2], [3]]))
        # Only the pairable units matter: a lone different value is not compared.
        assert math.isnan(ag.krippendorff_nominal_from_counts([[2, 0], [0, 1]]))


@pytest.mark.parametrize(
    "data",
    [[[1, 2, 3]], [[1, nan], [nan, 2]], [[nan, nan], [nan, nan]]],
    ids=["one-coder", "no-overlap", "all-missing"],
)
def test_alpha_without_pairable_units_raises(data: list) -> None:
    with pytest.raises(ValueError, match="pairable"):
        ag.krippendorff_nominal(np.array(data, dtype=float))


def test_alpha_from_counts_rejects_bad_tables() -> None:
    with pytest.raises(ValueError, match="pairable"):
        ag.krippendorff_nominal_from_counts([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="negative"):
        ag.krippendorff_nominal_from_counts([[2, -1], [1, 1]])
    with pytest.raises(ValueError, match="2-D"):
        ag.krippendorff_nominal_from_counts([2, 1])
    with pytest.raises(ValueError, match="whole"):
        ag.krippendorff_nominal_from_counts([[1.5, 1.0], [1.0, 1.0]])


def test_alpha_from_counts_matches_package_on_random_tables() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        counts = rng.multinomial(rng.integers(0, 7, size=200), np.full(8, 1 / 8))
        ours = ag.krippendorff_nominal_from_counts(counts)
        theirs = krippendorff.alpha(value_counts=counts, level_of_measurement="nominal")
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_alpha_by_group_matches_package_per_group() -> None:
    rng = np.random.default_rng(3)
    n_units, n_groups = 3000, 22
    truth = rng.integers(0, 8, n_units)
    votes = rng.integers(0, 6, n_units)
    counts = np.zeros((n_units, 8), dtype=np.int64)
    for j in range(5):  # up to five votes per unit, 70% agreeing with the unit's "truth"
        answer = np.where(rng.random(n_units) < 0.7, truth, rng.integers(0, 8, n_units))
        counts[np.arange(n_units), answer] += j < votes
    scene = rng.integers(100, 100 + n_groups, n_units)
    result = ag.alpha_by_group(counts, scene)
    assert sorted(result) == list(range(100, 100 + n_groups))
    for key, value in result.items():
        expected = krippendorff.alpha(
            value_counts=counts[scene == key], level_of_measurement="nominal"
        )
        assert value == pytest.approx(expected, abs=1e-12)
    # One group holding everything equals the overall coefficient.
    whole = ag.alpha_by_group(counts, np.zeros(n_units, dtype=np.int64))
    assert whole[0] == pytest.approx(ag.krippendorff_nominal_from_counts(counts), abs=1e-12)


def test_alpha_by_group_degenerate_groups_are_nan() -> None:
    counts = np.array([[2, 0], [0, 2], [1, 1], [1, 0], [0, 1], [3, 0], [2, 0]])
    groups = np.array([5, 5, 5, 6, 6, 7, 7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = ag.alpha_by_group(counts, groups)
    assert result[5] == pytest.approx(ag.krippendorff_nominal_from_counts(counts[:3]), abs=1e-12)
    assert math.isnan(result[6])  # no unit with two values
    assert math.isnan(result[7])  # everyone always said category 0
    assert all(type(k) is int and type(v) is float for k, v in result.items())


def test_alpha_by_group_reference_tables_as_groups() -> None:
    fw = np.asarray(FW)
    vc = np.pad(np.asarray(VC), ((0, 0), (0, 1)))
    counts = np.concatenate([fw, vc])
    groups = np.array([1] * len(fw) + [2] * len(vc))
    result = ag.alpha_by_group(counts, groups)
    assert result[1] == pytest.approx(0.2155740565, abs=1e-9)
    assert result[2] == pytest.approx(56 / 81, abs=1e-12)


def test_alpha_by_group_rejects_mismatched_groups() -> None:
    with pytest.raises(ValueError, match="group_ids"):
        ag.alpha_by_group([[1, 1], [2, 0]], [1])
    with pytest.raises(ValueError, match="integers"):
        ag.alpha_by_group([[1, 1], [2, 0]], [0.5, 1.5])


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.lists(st.integers(0, 4), min_size=3, max_size=3), st.integers(0, 3)),
        min_size=1,
        max_size=40,
    )
)
def test_alpha_by_group_property_matches_package(rows: list) -> None:
    counts = np.array([r[0] for r in rows], dtype=np.int64)
    groups = np.array([r[1] for r in rows], dtype=np.int64)
    result = ag.alpha_by_group(counts, groups)
    assert set(result) == set(groups.tolist())
    for key, value in result.items():
        sub = counts[groups == key]
        pairable = sub.sum(axis=1) >= 2
        if not pairable.any() or np.count_nonzero(sub[pairable].sum(axis=0)) < 2:
            assert math.isnan(value)
        else:
            expected = krippendorff.alpha(value_counts=sub, level_of_measurement="nominal")
            assert value == pytest.approx(expected, abs=1e-10)


# --------------------------------------------------------------------------------------------
# Fleiss' kappa
# --------------------------------------------------------------------------------------------


def test_fleiss_kappa_wikipedia_table() -> None:
    assert ag.fleiss_kappa(np.array(FW)) == pytest.approx(0.20993070442195522, abs=1e-12)
    assert round(ag.fleiss_kappa(FW), 3) == 0.210


def test_fleiss_kappa_psychiatric_diagnoses() -> None:
    counts = ratings_to_counts(DIAGNOSES, [1, 2, 3, 4, 5])
    assert ag.fleiss_kappa(counts) == pytest.approx(0.43024452006014074, abs=1e-12)
    assert round(ag.fleiss_kappa(counts), 7) == 0.4302445


def test_fleiss_kappa_invalid_tables() -> None:
    with pytest.raises(ValueError, match="same number"):
        ag.fleiss_kappa([[2, 1], [1, 1]])
    with pytest.raises(ValueError, match="two ratings"):
        ag.fleiss_kappa([[1, 0], [0, 1]])
    with pytest.raises(ValueError, match="subject"):
        ag.fleiss_kappa(np.zeros((0, 3), dtype=int))


def test_fleiss_kappa_single_category_is_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(ag.fleiss_kappa([[3, 0], [3, 0]]))


def test_fleiss_kappa_perfect_agreement() -> None:
    assert ag.fleiss_kappa([[3, 0, 0], [0, 3, 0], [0, 0, 3]]) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Majority
# --------------------------------------------------------------------------------------------


def test_majority_vectorised() -> None:
    counts = np.array([[0, 3, 1], [2, 2, 0], [0, 0, 0], [0, 0, 5], [1, 1, 1]])
    label, top, agreement = ag.majority(counts)
    np.testing.assert_array_equal(label, [1, -1, -1, 2, -1])
    np.testing.assert_array_equal(top, [3, 2, 0, 5, 1])
    np.testing.assert_allclose(agreement, [0.75, 0.5, 0.0, 1.0, 1 / 3])


def test_majority_can_pick_pass_column() -> None:
    label, _, _ = ag.majority([counts_row(pass_=2, happy=1)])
    assert label.tolist() == [PASS]


# --------------------------------------------------------------------------------------------
# Trust rule
# --------------------------------------------------------------------------------------------


def decide_one(counts: list[int], needed: int, max_votes: int, min_agreement: float) -> tuple:
    """Apply the trust rule to one clip, written out plainly, as a reference for ``decide``."""
    needed = min(needed, max_votes)
    total = sum(counts)
    if total < needed:
        return ag.COLLECTING, -1, (max(counts) / total if total else 0.0), needed
    top = max(counts)
    leader = counts.index(top)
    share = top / total
    strict = counts.count(top) == 1
    if strict and share >= min_agreement - 1e-9:
        if leader == PASS:
            return ag.DISCARDED, -1, share, needed
        return ag.TRUSTED, leader, share, needed
    if total < max_votes:
        return ag.COLLECTING, -1, share, total + 1
    return ag.DISPUTED, -1, share, needed


def test_decide_brief_examples() -> None:
    counts = np.array(
        [
            counts_row(happy=2, sad=1),  # trusted happy at 2/3
            counts_row(happy=1, sad=1, angry=1),  # 3-way split at 3: ask for a 4th
            counts_row(happy=2, sad=2, fear=1),  # 5 votes at max 5, no majority: disputed
            counts_row(pass_=2, happy=1),  # PASS leads: discarded
        ]
    )
    status, label, agreement, needed = ag.decide(counts, 3, 5)
    np.testing.assert_array_equal(status, [ag.TRUSTED, ag.COLLECTING, ag.DISPUTED, ag.DISCARDED])
    np.testing.assert_array_equal(label, [3, -1, -1, -1])
    np.testing.assert_allclose(agreement, [2 / 3, 1 / 3, 0.4, 2 / 3])
    assert round(float(agreement[0]), 3) == 0.667
    np.testing.assert_array_equal(needed, [3, 4, 3, 3])
    assert status.dtype == np.int8 and label.dtype == np.int8
    assert agreement.dtype == np.float64 and needed.dtype == np.int64


def test_decide_statuses_are_distinct_small_ints() -> None:
    statuses = [ag.COLLECTING, ag.TRUSTED, ag.DISPUTED, ag.DISCARDED, ag.ADJUDICATED]
    assert statuses == [0, 1, 2, 3, 4]
    assert ag.STATUS_KEYS[ag.ADJUDICATED] == "adjudicated"


def test_decide_collecting_below_needed() -> None:
    counts = np.array([counts_row(), counts_row(happy=2), counts_row(happy=1, sad=1)])
    status, label, agreement, needed = ag.decide(counts, 3, 5)
    assert status.tolist() == [ag.COLLECTING] * 3
    assert label.tolist() == [-1, -1, -1]
    np.testing.assert_allclose(agreement, [0.0, 1.0, 0.5])
    assert needed.tolist() == [3, 3, 3]


def test_decide_disputed_clip_asks_one_vote_at_a_time() -> None:
    row = [counts_row(happy=1, sad=1, angry=1)]
    assert ag.decide(row, 3, 5)[3].tolist() == [4]
    row = [counts_row(happy=2, sad=1, angry=1)]  # 4 votes, 2/4 < 2/3: one more
    status, _, _, needed = ag.decide(row, 4, 5)
    assert status.tolist() == [ag.COLLECTING] and needed.tolist() == [5]
    row = [counts_row(happy=3, sad=1, angry=1)]  # 3/5 < 2/3 at the cap: review
    status, _, _, needed = ag.decide(row, 5, 5)
    assert status.tolist() == [ag.DISPUTED] and needed.tolist() == [5]
    row = [counts_row(happy=4, sad=1)]  # 4/5 at the cap: trusted
    status, label, _, _ = ag.decide(row, 5, 5)
    assert status.tolist() == [ag.TRUSTED] and label.tolist() == [3]


def test_decide_ties_never_win() -> None:
    counts = [counts_row(happy=2, sad=2), counts_row(happy=3, pass_=3)]
    status, label, _, needed = ag.decide(counts, 3, 6, min_agreement=0.5)
    assert status.tolist() == [ag.COLLECTING, ag.DISPUTED]
    assert label.tolist() == [-1, -1]
    assert needed.tolist() == [5, 3]


def test_decide_min_agreement_tolerance() -> None:
    counts = [counts_row(happy=2, sad=1), counts_row(happy=4, sad=2), counts_row(fear=6, sad=3)]
    for threshold in (2 / 3, 0.6666666666666666, 1 - 1 / 3, 2.0 / 3.0):
        status, _, _, _ = ag.decide(counts, 3, 10, min_agreement=threshold)
        assert status.tolist() == [ag.TRUSTED] * 3
    status, _, _, _ = ag.decide(counts, 3, 10, min_agreement=0.667)
    assert status.tolist() == [ag.COLLECTING] * 3


def test_decide_pass_is_an_answer_not_a_label() -> None:
    counts = [counts_row(happy=2, pass_=1), counts_row(pass_=3), counts_row(pass_=2, sad=2)]
    status, label, agreement, _ = ag.decide(counts, 3, 4)
    assert status.tolist() == [ag.TRUSTED, ag.DISCARDED, ag.DISPUTED]
    assert label.tolist() == [3, -1, -1]
    np.testing.assert_allclose(agreement, [2 / 3, 1.0, 0.5])


def test_decide_per_clip_needed_and_cap() -> None:
    counts = [counts_row(happy=3), counts_row(happy=3), counts_row(happy=2, sad=2, fear=1)]
    status, _, _, needed = ag.decide(counts, np.array([3, 4, 7]), 5)
    assert status.tolist() == [ag.TRUSTED, ag.COLLECTING, ag.DISPUTED]
    assert needed.tolist() == [3, 4, 5]  # 7 is capped at max_votes


def test_decide_more_votes_than_max_is_decided() -> None:
    status, _, _, _ = ag.decide([counts_row(happy=3, sad=3, fear=1)], 3, 5)
    assert status.tolist() == [ag.DISPUTED]


def test_decide_empty_and_invalid_input() -> None:
    status, label, agreement, needed = ag.decide(np.zeros((0, 8), dtype=int), 3, 5)
    assert status.shape == label.shape == agreement.shape == needed.shape == (0,)
    with pytest.raises(ValueError, match="2 columns"):
        ag.decide([[3]], 3, 5)
    with pytest.raises(ValueError, match="needed"):
        ag.decide([counts_row()], 0, 5)
    with pytest.raises(ValueError, match="max_votes"):
        ag.decide([counts_row()], 3, 0)
    with pytest.raises(ValueError, match="min_agreement"):
        ag.decide([counts_row()], 3, 5, min_agreement=0.0)
    with pytest.raises(ValueError, match="negative"):
        ag.decide([[-1, 0, 0, 0, 0, 0, 0, 0]], 3, 5)


@settings(max_examples=200, deadline=None, database=None)
@given(
    rows=st.lists(st.lists(st.integers(0, 4), min_size=8, max_size=8), min_size=1, max_size=30),
    needed=st.integers(1, 7),
    max_votes=st.integers(1, 9),
    min_agreement=st.sampled_from([0.5, 0.6, 2 / 3, 0.75, 0.8, 1.0]),
)
def test_decide_matches_plain_reference(
    rows: list, needed: int, max_votes: int, min_agreement: float
) -> None:
    status, label, agreement, votes_needed = ag.decide(rows, needed, max_votes, min_agreement)
    for i, row in enumerate(rows):
        exp_status, exp_label, exp_share, exp_needed = decide_one(
            row, needed, max_votes, min_agreement
        )
        assert status[i] == exp_status
        assert label[i] == exp_label
        assert agreement[i] == pytest.approx(exp_share)
        assert votes_needed[i] == exp_needed
    assert not np.any(status == ag.ADJUDICATED)


def test_decide_full_campaign_shape() -> None:
    rng = np.random.default_rng(0)
    counts = rng.multinomial(5, np.full(8, 1 / 8), size=86_000)
    status, label, agreement, needed = ag.decide(counts, 3, 5)
    assert status.shape == (86_000,)
    assert np.all((label >= 0) == (status == ag.TRUSTED))
    assert np.all(label < N_CLASSES)
    assert np.all((agreement >= 0) & (agreement <= 1))
    assert np.all(needed <= 5)


# --------------------------------------------------------------------------------------------
# Gold batch scoring
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "total", "verdict"),
    [
        (10, 10, "accept"),
        (8, 10, "accept"),
        (4, 5, "accept"),
        (79, 100, "improper"),
        (4, 10, "improper"),
        (2, 5, "improper"),
        (39, 100, "unacceptable"),
        (0, 3, "unacceptable"),
        (0, 0, "improper"),
    ],
)
def test_score_batch(correct: int, total: int, verdict: str) -> None:
    assert ag.score_batch(correct, total) == verdict


def test_score_batch_custom_thresholds_and_constants() -> None:
    assert ag.score_batch(9, 10, accept=0.95, improper=0.9) == ag.Verdict.IMPROPER
    assert ag.score_batch(17, 20, accept=0.85) == ag.Verdict.ACCEPT
    assert ag.score_batch(1, 3, accept=0.9, improper=1 / 3) == ag.Verdict.IMPROPER
    assert {ag.Verdict.ACCEPT, ag.Verdict.IMPROPER, ag.Verdict.UNACCEPTABLE} == {
        "accept",
        "improper",
        "unacceptable",
    }


@pytest.mark.parametrize(
    ("correct", "total", "accept", "improper"),
    [(-1, 3, 0.8, 0.4), (4, 3, 0.8, 0.4), (1, 3, 0.4, 0.8), (1, 3, 1.2, 0.4)],
)
def test_score_batch_invalid(correct: int, total: int, accept: float, improper: float) -> None:
    with pytest.raises(ValueError):
        ag.score_batch(correct, total, accept=accept, improper=improper)


# --------------------------------------------------------------------------------------------
# Dawid-Skene: the 1979 paper
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ds1979() -> ag.DSResult:
    clip, worker, answer = ds1979_votes()
    return ag.dawid_skene(clip, worker, answer, 45, 5, 4, smoothing=0.0, max_iter=1000, tol=1e-12)


def test_ds1979_map_classes(ds1979: ag.DSResult) -> None:
    assert (ds1979.labels + 1).tolist() == DS1979_MAP


def test_ds1979_class_marginals(ds1979: ag.DSResult) -> None:
    np.testing.assert_allclose(ds1979.priors, DS1979_MARGINALS, atol=0.005)
    np.testing.assert_allclose(ds1979.posteriors.mean(axis=0), DS1979_MARGINALS, atol=0.005)


def test_ds1979_observer1_error_rates(ds1979: ag.DSResult) -> None:
    np.testing.assert_allclose(ds1979.confusion[0], DS1979_OBSERVER1, atol=0.005)
    np.testing.assert_allclose(ds1979.confusion.sum(axis=2), 1.0)


def test_ds1979_log_likelihood_non_decreasing(ds1979: ag.DSResult) -> None:
    assert ds1979.converged
    assert len(ds1979.log_likelihood_trace) > 2
    assert_non_decreasing(ds1979.log_likelihood_trace)


def test_ds1979_differs_from_majority_on_three_patients(ds1979: ag.DSResult) -> None:
    clip, _, answer = ds1979_votes()
    counts = np.bincount(clip * 4 + answer, minlength=45 * 4).reshape(45, 4)
    mv_label, _, _ = ag.majority(counts)
    assert (np.flatnonzero(mv_label != ds1979.labels) + 1).tolist() == [2, 12, 36]


def test_ds1979_default_settings_agree() -> None:
    clip, worker, answer = ds1979_votes()
    result = ag.dawid_skene(clip, worker, answer, 45, 5, 4)
    assert (result.labels + 1).tolist() == DS1979_MAP
    np.testing.assert_allclose(result.priors, DS1979_MARGINALS, atol=0.005)
    assert_non_decreasing(result.log_likelihood_trace)


# --------------------------------------------------------------------------------------------
# Dawid-Skene: independent slow reference
# --------------------------------------------------------------------------------------------


def reference_dawid_skene(
    votes: list[tuple[int, int, int]],
    n_clips: int,
    n_workers: int,
    k: int,
    gold: dict[int, int],
    n_iter: int,
    smoothing: float,
) -> tuple[list[list[float]], list[float], list[list[list[float]]], list[float]]:
    """Run Dawid-Skene EM with plain loops, for exactly ``n_iter`` M-step + E-step rounds."""
    by_clip: dict[int, list[tuple[int, int]]] = {i: [] for i in range(n_clips)}
    for clip, worker, answer in votes:
        by_clip[clip].append((worker, answer))
    observed = [i for i in range(n_clips) if by_clip[i] or i in gold]

    post = [[0.0] * k for _ in range(n_clips)]
    for i in range(n_clips):
        if i in gold:
            post[i][gold[i]] = 1.0
        elif by_clip[i]:
            for _, answer in by_clip[i]:
                post[i][answer] += 1.0 / len(by_clip[i])

    priors: list[float] = []
    conf: list[list[list[float]]] = []
    trace: list[float] = []
    for _ in range(n_iter):
        priors = [
            (sum(post[i][c] for i in observed) + smoothing) / (len(observed) + k * smoothing)
            for c in range(k)
        ]
        conf = []
        for w in range(n_workers):
            rows = []
            for c in range(k):
                cells = [smoothing] * k
                for clip, worker, answer in votes:
                    if worker == w:
                        cells[answer] += post[clip][c]
                total = sum(cells)
                rows.append([x / total if total > 0 else 1.0 / k for x in cells])
            conf.append(rows)

        ll = 0.0
        for i in range(n_clips):
            if i in gold:
                g = gold[i]
                ll += math.log(priors[g])
                for worker, answer in by_clip[i]:
                    ll += math.log(conf[worker][g][answer])
                post[i] = [1.0 if c == g else 0.0 for c in range(k)]
            elif by_clip[i]:
                joint = []
                for c in range(k):
                    p = priors[c]
                    for worker, answer in by_clip[i]:
                        p *= conf[worker][c][answer]
                    joint.append(p)
                evidence = sum(joint)
                ll += math.log(evidence)
                post[i] = [p / evidence for p in joint]
            else:
                post[i] = list(priors)
        if smoothing > 0:
            ll += smoothing * sum(math.log(p) for p in priors)
            ll += smoothing * sum(math.log(x) for rows in conf for row in rows for x in row)
        trace.append(ll)
    return post, priors, conf, trace


def simulate_small_crowd(seed: int) -> tuple[list[tuple[int, int, int]], int, int, int]:
    """Return random votes (clip, worker, answer) of 6 workers on 40 clips with 4 classes."""
    rng = np.random.default_rng(seed)
    n_clips, n_workers, k = 40, 6, 4
    truth = rng.integers(0, k, n_clips)
    votes = []
    for clip in range(n_clips - 2):  # the last two clips get no votes
        for worker in rng.choice(n_workers, size=rng.integers(1, 5), replace=False):
            right = rng.random() < 0.5 + 0.08 * worker
            answer = int(truth[clip]) if right else int(rng.integers(0, k))
            votes.append((clip, int(worker), answer))
    return votes, n_clips, n_workers, k


@pytest.mark.parametrize("smoothing", [0.01, 0.5])
@pytest.mark.parametrize("seed", [1, 2])
def test_ds_matches_slow_reference(seed: int, smoothing: float) -> None:
    votes, n_clips, n_workers, k = simulate_small_crowd(seed)
    gold = {0: votes[0][2], 5: 1, n_clips - 1: 2}  # the last one has gold but no votes
    clip, worker, answer = (np.array(col) for col in zip(*votes, strict=True))
    result = ag.dawid_skene(
        clip, worker, answer, n_clips, n_workers, k, gold, max_iter=25, tol=0.0, smoothing=smoothing
    )
    n_iter = len(result.log_likelihood_trace)
    post, priors, conf, trace = reference_dawid_skene(
        votes, n_clips, n_workers, k, gold, n_iter, smoothing
    )
    np.testing.assert_allclose(result.posteriors, post, atol=1e-6, rtol=0)
    np.testing.assert_allclose(result.priors, priors, atol=1e-9, rtol=0)
    np.testing.assert_allclose(result.confusion, conf, atol=1e-9, rtol=0)
    np.testing.assert_allclose(result.log_likelihood_trace, trace, rtol=1e-9)
    assert_non_decreasing(result.log_likelihood_trace)


def test_ds_gold_clamped_and_unvoted_clips() -> None:
    votes, n_clips, n_workers, k = simulate_small_crowd(3)
    clip, worker, answer = (np.array(col) for col in zip(*votes, strict=True))
    gold = {3: 2, 7: 0}
    result = ag.dawid_skene(clip, worker, answer, n_clips, n_workers, k, gold=gold)
    for c, g in gold.items():
        np.testing.assert_array_equal(result.posteriors[c], np.eye(k)[g])
        assert result.labels[c] == g and result.confidence[c] == 1.0
    for c in (n_clips - 2, n_clips - 1):  # no votes, no gold: the prior and no label
        np.testing.assert_allclose(result.posteriors[c], result.priors, atol=1e-12)
        assert result.labels[c] == -1 and result.confidence[c] == 0.0
    np.testing.assert_allclose(result.posteriors.sum(axis=1), 1.0)

    as_array = np.full(n_clips, -1)
    as_array[list(gold)] = list(gold.values())
    again = ag.dawid_skene(clip, worker, answer, n_clips, n_workers, k, gold=as_array)
    np.testing.assert_array_equal(again.posteriors, result.posteriors)


def test_ds_rejects_pass_and_bad_input() -> None:
    with pytest.raises(ValueError, match="answer"):
        ag.dawid_skene([0], [0], [PASS], 1, 1, N_CLASSES)
    with pytest.raises(ValueError, match="same length"):
        ag.dawid_skene([0, 1], [0], [1], 2, 1, 3)
    with pytest.raises(ValueError, match="worker_idx"):
        ag.dawid_skene([0], [4], [1], 2, 2, 3)
    with pytest.raises(ValueError, match="gold"):
        ag.dawid_skene([0], [0], [1], 2, 1, 3, gold={1: 3})
    with pytest.raises(ValueError, match="gold"):
        ag.dawid_skene([0], [0], [1], 2, 1, 3, gold={5: 1})


def test_ds_without_votes_returns_priors() -> None:
    empty = np.array([], dtype=np.int64)
    result = ag.dawid_skene(empty, empty, empty, 3, 2, 4)
    np.testing.assert_allclose(result.posteriors, 0.25)
    np.testing.assert_allclose(result.priors, 0.25)
    assert result.labels.tolist() == [-1, -1, -1]


# --------------------------------------------------------------------------------------------
# Dawid-Skene vs majority vote on a FERV39k-like simulated crowd
# --------------------------------------------------------------------------------------------

# Rough FERV39k class shares: angry, disgust, fear, happy, neutral, sad, surprise.
FERV_PRIORS = np.array([0.17, 0.04, 0.06, 0.22, 0.25, 0.18, 0.08])
# Which classes people mistake for which (row = true class): a shared pattern of errors.
CONFUSABLE = np.array(
    [
        [0, 3, 1, 0, 3, 1, 1],  # angry -> disgust, neutral
        [4, 0, 1, 0, 2, 1, 1],  # disgust -> angry
        [1, 1, 0, 0, 1, 2, 5],  # fear -> surprise, sad
        [0, 0, 0, 0, 4, 0, 2],  # happy -> neutral, surprise
        [1, 0, 0, 1, 0, 4, 0],  # neutral -> sad
        [1, 1, 1, 0, 5, 0, 0],  # sad -> neutral
        [0, 0, 4, 3, 1, 0, 0],  # surprise -> fear, happy
    ],
    dtype=float,
)


def simulate_ferv_crowd(seed: int, n_clips: int = 6000) -> dict:
    """Simulate 20 annotators (2 of them spammers) giving 3 votes per clip over 7 classes."""
    rng = np.random.default_rng(seed)
    k, n_workers = 7, 20
    truth = rng.choice(k, size=n_clips, p=FERV_PRIORS)
    confusion = np.empty((n_workers, k, k))
    errors = CONFUSABLE / CONFUSABLE.sum(axis=1, keepdims=True)
    for w in range(n_workers):
        accuracy = rng.uniform(0.45, 0.85, size=k)  # some classes harder for some people
        bias = rng.dirichlet(np.full(k, 2.0))  # personal tendency (e.g. overusing neutral)
        off = errors * bias
        np.fill_diagonal(off, 0.0)
        off /= off.sum(axis=1, keepdims=True)
        confusion[w] = off * (1 - accuracy)[:, None] + np.diag(accuracy)
    confusion[:2] = 1.0 / k  # two spammers answering uniformly at random
    workers = np.argsort(rng.random((n_clips, n_workers)), axis=1)[:, :3]  # 3 distinct each
    clip = np.repeat(np.arange(n_clips), 3)
    worker = workers.ravel()
    cumulative = confusion[worker, truth[clip]].cumsum(axis=1)
    answer = np.minimum((rng.random(clip.size)[:, None] > cumulative).sum(axis=1), k - 1)
    return {
        "truth": truth,
        "clip": clip,
        "worker": worker,
        "answer": answer,
        "n_clips": n_clips,
        "n_workers": n_workers,
        "k": k,
        "rng": rng,
    }


def test_ds_beats_majority_vote_on_simulated_ferv_crowd() -> None:
    crowd = simulate_ferv_crowd(seed=2024)
    n_clips, k, truth = crowd["n_clips"], crowd["k"], crowd["truth"]
    counts = np.bincount(crowd["clip"] * k + crowd["answer"], minlength=n_clips * k).reshape(
        n_clips, k
    )
    # Majority vote, ties broken at random (the fair baseline: a tie is a coin toss).
    noise = crowd["rng"].random(counts.shape)
    is_top = counts == counts.max(axis=1, keepdims=True)
    mv = np.where(is_top, noise, -1.0).argmax(axis=1)
    mv_accuracy = float(np.mean(mv == truth))

    result = ag.dawid_skene(
        crowd["clip"], crowd["worker"], crowd["answer"], n_clips, crowd["n_workers"], k
    )
    ds_accuracy = float(np.mean(result.labels == truth))
    assert ds_accuracy > mv_accuracy, (ds_accuracy, mv_accuracy)
    assert_non_decreasing(result.log_likelihood_trace)
    # The spammers are found: their confusion rows are nearly flat, unlike everyone else's.
    diagonal = np.einsum("wkk->wk", result.confusion).mean(axis=1)
    assert diagonal[:2].max() < diagonal[2:].min()


def test_ds_gold_improves_or_keeps_accuracy_on_simulated_crowd() -> None:
    crowd = simulate_ferv_crowd(seed=7, n_clips=3000)
    n_clips, k, truth = crowd["n_clips"], crowd["k"], crowd["truth"]
    args = (crowd["clip"], crowd["worker"], crowd["answer"], n_clips, crowd["n_workers"], k)
    plain = ag.dawid_skene(*args)
    gold_ids = np.arange(0, n_clips, 20)  # 5% gold, like the default gold share
    gold = dict(zip(gold_ids.tolist(), truth[gold_ids].tolist(), strict=True))
    with_gold = ag.dawid_skene(*args, gold=gold)
    rest = np.setdiff1d(np.arange(n_clips), gold_ids)
    assert np.all(with_gold.labels[gold_ids] == truth[gold_ids])
    plain_acc = np.mean(plain.labels[rest] == truth[rest])
    gold_acc = np.mean(with_gold.labels[rest] == truth[rest])
    assert gold_acc >= plain_acc - 0.01
    assert_non_decreasing(with_gold.log_likelihood_trace)


def test_the_numerics_import_no_django() -> None:
    """The module stays usable on plain arrays: it takes its codes from no Django model."""
    import subprocess
    import sys

    code = (
        "import sys, annotations.agreement; print(any(m.startswith('django') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
