"""Shapes of the annotation API's input and output.

Nothing an annotator receives carries other people's answers, vote counts, the consensus or
whether a clip is gold.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_KEYS, Answer
from labelstudio_ferv.media_urls import MediaUrlField, media_url

from .models import Role

MAX_TIME_MS = 24 * 3600 * 1000
ANSWER_HELP = "The answer: one of " + ", ".join(ANSWER_KEYS) + " (pass: no usable face or no "
ANSWER_HELP += "single expression)."


# --- authentication ---------------------------------------------------------------------------


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class TokenOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")


# --- campaigns --------------------------------------------------------------------------------


class OwnProgressOutput(serializers.Serializer):
    answered = serializers.IntegerField(source="my_votes", help_text="Your answers so far.")
    answered_today = serializers.IntegerField(
        source="my_votes_today",
        help_text="Your answers since midnight (in the server's time zone, setting TIME_ZONE).",
    )
    clips = serializers.IntegerField(
        source="clip_total", help_text="Clips in the campaign, without those whose media failed."
    )


class ReinstatedOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    note = serializers.CharField(help_text="The reviewer's note (may be empty).")


class CampaignOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, help_text="Your role in this campaign.")
    progress = OwnProgressOutput(source="*")
    reinstated = serializers.SerializerMethodField(
        help_text="When a reviewer last let you work again after a pause, with their note; null "
        "if you were never paused, or are paused now. The workspace says welcome back once."
    )

    @extend_schema_field(ReinstatedOutput(allow_null=True))
    def get_reinstated(self, campaign) -> dict | None:
        at = getattr(campaign, "reinstated_at", None)
        if at is None or getattr(campaign, "paused_now", False):
            return None
        return ReinstatedOutput({"at": at, "note": campaign.reinstated_note or ""}).data


class ProgressOutput(serializers.Serializer):
    clips = serializers.IntegerField(
        help_text="Clips in the campaign, gold included, without those whose media failed."
    )
    failed = serializers.IntegerField(
        help_text="Clips whose media failed: no work for anyone, counted in no other number."
    )
    gold = serializers.IntegerField(help_text="Gold (reference) clips.")
    votes = serializers.IntegerField(help_text="Valid votes stored on all clips.")
    live_assignments = serializers.IntegerField(help_text="Clips being looked at right now.")
    collecting = serializers.IntegerField()
    trusted = serializers.IntegerField()
    disputed = serializers.IntegerField()
    discarded = serializers.IntegerField()
    adjudicated = serializers.IntegerField()


class GoldInput(serializers.Serializer):
    gold_label = serializers.ChoiceField(
        choices=CLASS_KEYS,
        allow_null=True,
        help_text="The clip's reference label (a class, never pass); null makes it ordinary.",
    )


class GoldOutput(serializers.Serializer):
    task = serializers.IntegerField(source="pk")
    clip = serializers.IntegerField(source="clip_id")
    gold_label = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=CLASS_KEYS, allow_null=True))
    def get_gold_label(self, task) -> str | None:
        return None if task.gold_label is None else CLASS_KEYS[task.gold_label]


# --- assignments ------------------------------------------------------------------------------


class AssignmentOutput(serializers.Serializer):
    id = serializers.IntegerField(source="assignment_id")
    expires_at = serializers.DateTimeField(
        help_text="The clip is held for you until then; an answer after it is still stored."
    )


class ClipToAnnotateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    video_url = MediaUrlField(source="video", allow_null=False)
    poster_url = MediaUrlField(source="poster", allow_null=False)
    duration_s = serializers.FloatField(allow_null=True)
    fps = serializers.FloatField(allow_null=True)
    frame_count = serializers.IntegerField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)


class OfferOutput(serializers.Serializer):
    assignment = AssignmentOutput(source="*")
    clip = ClipToAnnotateOutput()


class NextOutput(OfferOutput):
    ahead = OfferOutput(
        allow_null=True,
        help_text="With `ahead=1`: the clip held for you after this one, to preload while this "
        "one plays (null when none is left, or when not asked for). It becomes your current "
        "clip once this one is answered or skipped.",
    )


class NextQuery(serializers.Serializer):
    ahead = serializers.BooleanField(
        default=False,
        help_text="Also hold and return the clip after this one (`ahead`), for preloading.",
    )


class AnswerInput(serializers.Serializer):
    label = serializers.ChoiceField(choices=ANSWER_KEYS, help_text=ANSWER_HELP)
    time_ms = serializers.IntegerField(
        min_value=0,
        max_value=MAX_TIME_MS,
        required=False,
        allow_null=True,
        help_text="Milliseconds spent on the clip, as the browser measured them.",
    )


class QualificationProgress(serializers.Serializer):
    answered = serializers.IntegerField()
    right = serializers.IntegerField()
    clips = serializers.IntegerField(help_text="Qualification clips asked at least.")
    state = serializers.ChoiceField(
        choices=["qualifying", "qualified", "failed"],
        help_text="After this answer: another qualification clip comes (qualifying), real "
        "clips come (qualified), or the annotator is paused (failed).",
    )


class Feedback(serializers.Serializer):
    correct = serializers.BooleanField()
    right_answer = serializers.CharField(help_text="The clip's reference class (a class key).")
    qualification = QualificationProgress()


class VoteOutput(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.IntegerField(source="assignment_id", allow_null=True)
    label = serializers.SerializerMethodField()
    time_ms = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    feedback = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=ANSWER_KEYS))
    def get_label(self, vote) -> str:
        return Answer(vote.answer).key

    @extend_schema_field(
        Feedback(allow_null=True, help_text="After a qualification clip: the right answer.")
    )
    def get_feedback(self, vote) -> dict | None:
        from .quality import answer_feedback

        return answer_feedback(vote=vote)


class AnswerNextOutput(serializers.Serializer):
    vote = VoteOutput()

    next = NextOutput(
        allow_null=True, help_text="Your next clip, or null when none is left for you."
    )


class AnsweredAssignmentOutput(serializers.Serializer):
    id = serializers.IntegerField()


class LastAnswerOutput(serializers.Serializer):
    assignment = AnsweredAssignmentOutput(
        allow_null=True, help_text="Send a different label to its answer endpoint to correct it."
    )
    clip = ClipToAnnotateOutput()
    vote = VoteOutput()


# --- the annotation loop's responses, without building serializers --------------------------
# next/, answer/ and answer-and-next/ answer every few seconds per annotator: instantiating the
# nested serializers above (each deep-copies its fields) cost more CPU than the rest of the
# response. These give the same JSON as NextOutput, VoteOutput and AnswerNextOutput (the
# schema keeps the serializers; tests/annotations/test_hot_path_queries.py compares the two).

_DATETIME = serializers.DateTimeField()


def _number(kind, value):
    return None if value is None else kind(value)


def _media(value, user):
    return None if value is None else media_url(value, user=user)


def offer_data(offer, *, user, with_ahead: bool = True) -> dict:
    """An Offer as NextOutput (``with_ahead``) or OfferOutput gives it."""
    clip = offer.clip
    data = {
        "assignment": {
            "id": int(offer.assignment_id),
            "expires_at": _DATETIME.to_representation(offer.expires_at),
        },
        "clip": {
            "id": int(clip.id),
            "video_url": _media(clip.video, user),
            "poster_url": _media(clip.poster, user),
            "duration_s": _number(float, clip.duration_s),
            "fps": _number(float, clip.fps),
            "frame_count": _number(int, clip.frame_count),
            "width": _number(int, clip.width),
            "height": _number(int, clip.height),
        },
    }
    if with_ahead:
        ahead = offer.ahead
        data["ahead"] = None if ahead is None else offer_data(ahead, user=user, with_ahead=False)
    return data


def vote_data(vote) -> dict:
    """A Vote as VoteOutput gives it."""
    return {
        "id": int(vote.id),
        "assignment": _number(int, vote.assignment_id),
        "label": Answer(vote.answer).key,
        "time_ms": _number(int, vote.time_ms),
        "created_at": _DATETIME.to_representation(vote.created_at),
        "updated_at": _DATETIME.to_representation(vote.updated_at),
        "feedback": _feedback(vote),
    }


def _feedback(vote) -> dict | None:
    from .quality import answer_feedback

    return answer_feedback(vote=vote)
