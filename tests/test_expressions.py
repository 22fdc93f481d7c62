"""One definition of the classes: FERV39k alphabetical indices, PASS an answer but not a label."""

import pytest

from labelstudio_ferv.expressions import (
    ANSWER_KEYS,
    CLASS_KEYS,
    CLASS_NAMES,
    PASS,
    Answer,
    Label,
    answer_from_key,
)


def test_class_indices_follow_the_release_alphabetical_order():
    assert CLASS_NAMES == ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
    assert [int(a) for a in Answer][:7] == list(range(7))
    assert list(CLASS_NAMES) == sorted(CLASS_NAMES)


def test_pass_is_an_answer_but_not_a_label():
    assert ANSWER_KEYS[-1] == "pass" and PASS == 7
    assert not Answer.PASS.is_label
    assert "pass" not in CLASS_KEYS
    assert [(int(x), x.label) for x in Label] == [(int(a), a.label) for a in Answer if a.is_label]


def test_answers_are_found_by_key_or_release_name():
    assert answer_from_key("happy") is Answer.HAPPY
    assert answer_from_key("Surprise") is Answer.SURPRISE
    assert answer_from_key("PASS") is Answer.PASS
    with pytest.raises(ValueError, match="unknown answer 'contempt'"):
        answer_from_key("contempt")
