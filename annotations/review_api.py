"""Review API (reviewers and admins): the review queue, decisions and Improper batches.

Views check the shape of input, resolve ids through ``access_campaign`` and call one read of
review_selectors.py or one service of review.py. The design is in REVIEW.md.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_KEYS, answer_from_key
from labelstudio_ferv.media_urls import MediaUrlField
from labelstudio_ferv.openapi import E400, E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import review, review_selectors
from .access import access_campaign
from .models import ReviewDecision, Role

# --- documentation helpers ----------------------------------------------------------------------


CAMPAIGN_ID = path_id("campaign_id", "A campaign you review or administer.")
TASK_ID = path_id("task_id", "A clip of the campaign (its task id).")
BATCH_ID = path_id("batch_id", "A gold batch of the campaign.")

E403 = error_response("Reviewers and admins only.")
E404 = error_response("No such campaign (or you are not a member of it).")
E404_TASK = error_response("No such campaign (or not a member), or no such clip in it.")
E404_BATCH = error_response("No such campaign (or not a member), or no such batch in it.")
E409_DECISION = error_response(
    "Another reviewer decided this clip since you loaded it (the message names who and when; "
    "details.current_version is the version to decide on), the clip is gold, or there is "
    "nothing to reopen."
)
E409_BATCH = error_response("The batch was already decided (by whom and when), or needs no review.")
READ_ERRORS = {401: E401, 403: E403, 404: E404}


# Class and answer keys are documented by a pattern, not an enum: drf-spectacular names every
# enum after its field, and the annotator API already uses these sets under other field names.
def _keys_schema(keys: tuple[str, ...]) -> dict:
    return {"type": "string", "pattern": f"^({'|'.join(keys)})$", "example": keys[3]}


@extend_schema_field(_keys_schema(CLASS_KEYS))
class ClassKeyField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=CLASS_KEYS, **kwargs)


@extend_schema_field(_keys_schema(ANSWER_KEYS))
class AnswerKeyField(serializers.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=ANSWER_KEYS, **kwargs)


# --- shapes -------------------------------------------------------------------------------------


class QueueQuery(serializers.Serializer):
    scenario = serializers.CharField(
        required=False, max_length=64, help_text="Scenario id, code (DL) or name."
    )
    scene = serializers.CharField(
        required=False, max_length=64, help_text="Scene id, folder (DailyLife) or name."
    )
    leading = AnswerKeyField(
        required=False,
        help_text="Only clips where this answer has the top count (ties: each tied answer).",
    )
    agreement_min = serializers.FloatField(required=False, min_value=0, max_value=1)
    agreement_max = serializers.FloatField(required=False, min_value=0, max_value=1)
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="`next_cursor` of the previous page."
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=25)


class ScenarioOut(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class SceneOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    folder = serializers.CharField(help_text="The scene's folder name in the release.")


class ReviewClipOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    video_url = MediaUrlField(source="video")
    poster_url = MediaUrlField(source="poster")
    duration_s = serializers.FloatField(allow_null=True)
    frame_count = serializers.IntegerField(allow_null=True)


class SeenVoteOut(serializers.Serializer):
    annotator = serializers.CharField(help_text="Username.")
    answer = AnswerKeyField()
    time_ms = serializers.IntegerField(allow_null=True)
    valid = serializers.BooleanField(help_text="False: its batch failed the gold checks.")
    created_at = serializers.DateTimeField()


def _counts_field() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.IntegerField(), help_text="Valid votes per answer key."
    )


class ReviewItemOut(serializers.Serializer):
    task = serializers.IntegerField()
    clip = ReviewClipOut()
    scene = SceneOut()
    scenario = ScenarioOut()
    status = serializers.CharField()
    label = ClassKeyField(allow_null=True)
    agreement = serializers.FloatField(help_text="Share of the leading answer.")
    leading = serializers.ListField(child=AnswerKeyField(), help_text="Answers with the top count.")
    counts = _counts_field()
    vote_count = serializers.IntegerField()
    votes_needed = serializers.IntegerField()
    votes = SeenVoteOut(many=True, help_text="Who voted what, oldest first.")
    reference_label = ClassKeyField(
        allow_null=True, help_text="The gold or imported reference, if any."
    )
    ds_label = ClassKeyField(allow_null=True)
    ds_confidence = serializers.FloatField(allow_null=True)
    extra_votes = serializers.IntegerField()
    review_locked = serializers.BooleanField()
    review_version = serializers.IntegerField(help_text="Send it back with a decision.")
    decisions = serializers.IntegerField(help_text="Decisions in this clip's history.")


class QueuePageOut(serializers.Serializer):
    items = ReviewItemOut(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="Null on the last page.")


class DecisionInput(serializers.Serializer):
    action = serializers.ChoiceField(choices=ReviewDecision.Action.choices)
    label = ClassKeyField(required=False, help_text="The final label (action `label` only).")
    extra_votes = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=review.MAX_EXTRA_VOTES,
        help_text="How many more votes (action `more_votes` only).",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    version = serializers.IntegerField(
        min_value=0, help_text="The clip's `review_version` you decided on."
    )


class DecisionOut(serializers.Serializer):
    id = serializers.IntegerField()
    task = serializers.IntegerField(source="task_id")
    action = serializers.ChoiceField(choices=ReviewDecision.Action.choices)
    label = serializers.SerializerMethodField()
    extra_votes = serializers.IntegerField()
    note = serializers.CharField()
    reviewer = serializers.CharField(source="reviewer.username")
    before = serializers.JSONField(help_text="The clip's state before the decision.")
    after = serializers.JSONField(help_text="The clip's state after it.")
    created_at = serializers.DateTimeField()

    def get_label(self, decision) -> str | None:
        return None if decision.label is None else CLASS_KEYS[decision.label]


class DecisionResultOut(serializers.Serializer):
    decision = DecisionOut()
    task = ReviewItemOut()


class HistoryQuery(serializers.Serializer):
    before = serializers.IntegerField(required=False, min_value=1, help_text="`next_before`.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=50)


class HistoryPageOut(serializers.Serializer):
    items = DecisionOut(many=True)
    next_before = serializers.IntegerField(allow_null=True, help_text="Null on the last page.")


class BatchQuery(serializers.Serializer):
    after = serializers.IntegerField(required=False, min_value=1, help_text="`next_after`.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=25)


class GoldAnswerOut(serializers.Serializer):
    task = serializers.IntegerField()
    clip = ReviewClipOut()
    reference_label = ClassKeyField()
    answer = AnswerKeyField()
    correct = serializers.BooleanField()


class BatchOut(serializers.Serializer):
    id = serializers.IntegerField()
    annotator = serializers.CharField()
    number = serializers.IntegerField(help_text="The annotator's n-th batch in the campaign.")
    size = serializers.IntegerField()
    gold_total = serializers.IntegerField()
    gold_correct = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    gold = GoldAnswerOut(many=True, help_text="The batch's answers on gold clips.")


class BatchPageOut(serializers.Serializer):
    items = BatchOut(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="Null on the last page.")


class BatchDecisionInput(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=["accept", "reject"], help_text="reject: the batch's votes stop counting."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class BatchDecidedOut(serializers.Serializer):
    id = serializers.IntegerField()
    review = serializers.CharField()
    reviewed_by = serializers.CharField(source="reviewed_by.username")
    reviewed_at = serializers.DateTimeField()
    review_note = serializers.CharField()


# --- queue --------------------------------------------------------------------------------------


def _page(request: Request, campaign_id: int, source: str) -> Response:
    access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
    query = QueueQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    data = dict(query.validated_data)
    leading = data.pop("leading", None)
    filters = review_selectors.QueueFilters(
        scenario=data.get("scenario"),
        scene=data.get("scene"),
        leading=None if leading is None else int(answer_from_key(leading)),
        agreement_min=data.get("agreement_min"),
        agreement_max=data.get("agreement_max"),
    )
    page = review_selectors.review_queue(
        campaign_id=campaign_id,
        source=source,
        filters=filters,
        cursor=data.get("cursor"),
        limit=data["limit"],
    )
    return Response(QueuePageOut(page, context={"request": request}).data)


class ReviewQueueView(APIView):
    """Disputed clips (the trust rule could not settle them), lowest agreement first."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, QueueQuery],
        responses={200: QueuePageOut, 400: E400, **READ_ERRORS},
        summary="Review queue",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return _page(request, campaign_id, review_selectors.Source.DISPUTED)


class DisagreementQueueView(APIView):
    """Trusted clips whose majority label and Dawid-Skene label differ, lowest agreement first."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, QueueQuery],
        responses={200: QueuePageOut, 400: E400, **READ_ERRORS},
        summary="Majority and Dawid-Skene disagree",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        return _page(request, campaign_id, review_selectors.Source.DS_DISAGREEMENT)


class ReviewTaskView(APIView):
    """One clip as a reviewer sees it (votes, who voted what, reference), whatever its status."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, TASK_ID],
        responses={200: ReviewItemOut, 401: E401, 403: E403, 404: E404_TASK},
        summary="A clip for review",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int, task_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        item = review_selectors.review_item(campaign=campaign, task_id=task_id)
        return Response(ReviewItemOut(item, context={"request": request}).data)


# --- decisions ----------------------------------------------------------------------------------


def _history(request: Request, campaign_id: int, task_id: int | None) -> Response:
    query = HistoryQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    rows, next_before = review_selectors.decision_history(
        campaign_id=campaign_id,
        task_id=task_id,
        before=query.validated_data.get("before"),
        limit=query.validated_data["limit"],
    )
    return Response(HistoryPageOut({"items": rows, "next_before": next_before}).data)


class TaskDecisionsView(APIView):
    """A clip's decision history (GET, newest first) and a new decision (POST).

    label: the final label, held against later votes. discard: no usable face or expression.
    more_votes: the clip collects up to N more votes and the votes decide again. reopen: undo
    the decisions in force; the votes decide under the campaign's rules. A decision reverses
    an earlier one by being recorded after it; history is never edited.
    """

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID, TASK_ID, HistoryQuery],
        responses={200: HistoryPageOut, 400: E400, 401: E401, 403: E403, 404: E404_TASK},
        summary="A clip's decisions",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int, task_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        review_selectors.review_item(campaign=campaign, task_id=task_id)  # 404 for a clip elsewhere
        return _history(request, campaign_id, task_id)

    @extend_schema(
        request=DecisionInput,
        parameters=[CAMPAIGN_ID, TASK_ID],
        responses={
            200: OpenApiResponse(DecisionResultOut, description="Decided; the clip as it is now."),
            400: E400,
            401: E401,
            403: E403,
            404: E404_TASK,
            409: E409_DECISION,
        },
        summary="Decide a clip",
        tags=["review"],
    )
    def post(self, request: Request, campaign_id: int, task_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = DecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        label = data.validated_data.get("label")
        decision = review.task_decide(
            campaign=campaign,
            task_id=task_id,
            reviewer=request.user,
            action=data.validated_data["action"],
            version=data.validated_data["version"],
            label=None if label is None else int(answer_from_key(label)),
            extra_votes=data.validated_data.get("extra_votes", 0),
            note=data.validated_data["note"],
        )
        item = review_selectors.review_item(campaign=campaign, task_id=task_id)
        return Response(
            DecisionResultOut(
                {"decision": decision, "task": item}, context={"request": request}
            ).data
        )


class CampaignDecisionsView(APIView):
    """Every review decision of the campaign, newest first."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, HistoryQuery],
        responses={200: HistoryPageOut, 400: E400, **READ_ERRORS},
        summary="Decision history",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        return _history(request, campaign_id, None)


# --- Improper batches ---------------------------------------------------------------------------


class BatchQueueView(APIView):
    """Improper batches waiting for a reviewer, oldest first, with their gold answers."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, BatchQuery],
        responses={200: BatchPageOut, 400: E400, **READ_ERRORS},
        summary="Improper batches",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        query = BatchQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        items, next_after = review_selectors.pending_batches(
            campaign_id=campaign_id,
            after=query.validated_data.get("after"),
            limit=query.validated_data["limit"],
        )
        return Response(
            BatchPageOut(
                {"items": items, "next_after": next_after}, context={"request": request}
            ).data
        )


class BatchDecisionView(APIView):
    """Accept or reject an Improper batch as a whole; the first decision is final."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=BatchDecisionInput,
        parameters=[CAMPAIGN_ID, BATCH_ID],
        responses={
            200: BatchDecidedOut,
            400: E400,
            401: E401,
            403: E403,
            404: E404_BATCH,
            409: E409_BATCH,
        },
        summary="Decide an Improper batch",
        tags=["review"],
    )
    def post(self, request: Request, campaign_id: int, batch_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = BatchDecisionInput(data=request.data)
        data.is_valid(raise_exception=True)
        batch = review.batch_decide(
            campaign=campaign,
            batch_id=batch_id,
            reviewer=request.user,
            accept=data.validated_data["decision"] == "accept",
            note=data.validated_data["note"],
        )
        return Response(BatchDecidedOut(batch).data)
