"""The seven FERV39k expression classes and PASS: the one definition every part of the app uses.

Class indices follow the alphabetical order of the release, which public training code uses
(angry=0 ... surprise=6). PASS (no usable face, or no single expression) is an answer an
annotator may give, never a label.
"""

from django.db import models


class Answer(models.IntegerChoices):
    ANGRY = 0, "Angry"
    DISGUST = 1, "Disgust"
    FEAR = 2, "Fear"
    HAPPY = 3, "Happy"
    NEUTRAL = 4, "Neutral"
    SAD = 5, "Sad"
    SURPRISE = 6, "Surprise"
    PASS = 7, "PASS"

    @property
    def key(self) -> str:
        """Return the lowercase name used in the API and on keyboards' help ("happy", "pass")."""
        return self.name.lower()

    @property
    def is_label(self) -> bool:
        return self != Answer.PASS


# The answers that are labels: what a clip may finally be called (every answer but PASS).
Label = models.IntegerChoices(
    "Label", [(a.name, (a.value, a.label)) for a in Answer if a.is_label], module=__name__
)

PASS = int(Answer.PASS)
N_CLASSES = len(Label)
N_ANSWERS = len(Answer)
ANSWER_KEYS: tuple[str, ...] = tuple(a.key for a in Answer)
CLASS_KEYS: tuple[str, ...] = ANSWER_KEYS[:N_CLASSES]
CLASS_NAMES: tuple[str, ...] = tuple(a.label for a in Answer)[:N_CLASSES]


def answer_from_key(key: str) -> Answer:
    """Return the answer named by its key ("happy") or its release name ("Happy")."""
    try:
        return Answer[key.strip().upper()]
    except KeyError:
        raise ValueError(f"unknown answer {key!r}; expected one of {', '.join(ANSWER_KEYS)}")
