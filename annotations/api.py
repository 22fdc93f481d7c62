"""Annotation API: tokens, campaigns, the next clip, answers, corrections, skips and review.

Views check the shape of input, resolve ids through the access helpers and call one service or
selector; rules live in services.py, the claim's design in ASSIGNMENT.md.
"""

import random

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv import throttle
from labelstudio_ferv.errors import ValidationError
from labelstudio_ferv.expressions import ANSWER_KEYS, answer_from_key
from labelstudio_ferv.openapi import E400, E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import quality, selectors, services
from .access import access_campaign
from .models import Role
from .serializers import (
    MAX_TIME_MS,
    AnswerInput,
    AnswerNextOutput,
    CampaignOutput,
    GoldInput,
    GoldOutput,
    LastAnswerOutput,
    NextOutput,
    NextQuery,
    ProgressOutput,
    TokenInput,
    TokenOutput,
    VoteOutput,
    offer_data,
    vote_data,
)

CAMPAIGN_ID = path_id("campaign_id", "A campaign you are a member of.")
ASSIGNMENT_ID = path_id("assignment_id", "One of your assignments.")
TASK_ID = path_id("task_id", "A clip of the campaign (its task id).")

E403 = error_response("Your role in this campaign is too low for this.")
E403_PAUSED = error_response(
    "`annotator_paused`: you are paused in this campaign (the message says why) until a "
    "reviewer reinstates you."
)
E404_CAMPAIGN = error_response("No such campaign, or you are not a member of it.")
E404_ASSIGNMENT = error_response("No such assignment of yours.")
E409 = error_response("The request conflicts with the state of the clip (see the message).")
AHEAD = OpenApiParameter(
    "ahead",
    bool,
    OpenApiParameter.QUERY,
    description="Also hold the clip after the next one and return it as `ahead`, so that the "
    "browser can preload it (at most one clip is held ahead).",
)


def _ahead(request: Request) -> bool:
    query = NextQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["ahead"]


class TokenView(APIView):
    """Exchange a username and password for the user's API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(
        request=TokenInput,
        responses={
            200: TokenOutput,
            400: E400,
            429: error_response(
                "Too many failed logins for this username or from this address; the "
                "Retry-After header says how many seconds to wait."
            ),
        },
        summary="Get an API token",
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        wait = throttle.login_retry_after(request=request, username=username)
        if wait is not None:
            raise Throttled(wait=wait, detail="Too many failed logins; try again later.")
        user = authenticate(request._request, **data.validated_data)
        if user is None or not user.is_active:
            throttle.login_failed(request=request, username=username)
            raise ValidationError("Wrong username or password.", code="bad_credentials")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


class CampaignListView(APIView):
    """The campaigns you are a member of, with your role and your own progress."""

    @extend_schema(
        responses={200: CampaignOutput(many=True), 401: E401},
        summary="Your campaigns",
        tags=["campaigns"],
    )
    def get(self, request: Request) -> Response:
        campaigns = selectors.campaigns_for_user(user=request.user)
        return Response(CampaignOutput(campaigns, many=True).data)


class NextView(APIView):
    """Your next clip: the one you hold, or a newly claimed one; 204 when none is left for you."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID, AHEAD],
        responses={
            200: OpenApiResponse(NextOutput, description="The clip you hold until `expires_at`."),
            400: E400,
            204: OpenApiResponse(description="No clip is left for you in this campaign."),
            401: E401,
            403: E403_PAUSED,
            404: E404_CAMPAIGN,
            409: E409,
        },
        summary="Next clip",
        tags=["annotate"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        ahead = _ahead(request)
        campaign, membership = access_campaign(user=request.user, campaign_id=campaign_id)
        quality.annotator_gate(membership=membership)
        offer = services.assignment_next(
            campaign=campaign, membership=membership, user=request.user, ahead=ahead
        )
        if offer is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(offer_data(offer, user=request.user))


def _answer_input(request: Request) -> dict:
    body = request.data
    # The answer every annotator sends many times an hour, checked by hand: building the
    # serializer (it deep-copies its fields) took about a tenth of an answer-and-next loop in
    # `make bench-profile`. Anything else, every error included, goes through AnswerInput,
    # which gives the same values for what passes here.
    if isinstance(body, dict):
        label, time_ms = body.get("label"), body.get("time_ms")
        if (
            type(label) is str
            and label in ANSWER_KEYS
            and (time_ms is None or (type(time_ms) is int and 0 <= time_ms <= MAX_TIME_MS))
        ):
            return {"answer": int(answer_from_key(label)), "time_ms": time_ms}
    data = AnswerInput(data=body)
    data.is_valid(raise_exception=True)
    return {
        "answer": int(answer_from_key(data.validated_data["label"])),
        "time_ms": data.validated_data.get("time_ms"),
    }


ANSWER_ERRORS = {400: E400, 401: E401, 404: E404_ASSIGNMENT, 409: E409}


class AnswerView(APIView):
    """Answer your assignment; the same answer again is a no-op, a different one a correction.

    201: the answer is stored. 200: it was already stored (a retry), or your most recent answer
    was corrected. 409: the assignment was skipped, or the answer can no longer change (not your
    most recent answer, or the clip's label is settled). An answer after the lease ran out is
    stored all the same.
    """

    parser_classes = [JSONParser]

    @extend_schema(
        request=AnswerInput,
        parameters=[ASSIGNMENT_ID],
        responses={
            201: OpenApiResponse(VoteOutput, description="Your answer, stored now."),
            200: OpenApiResponse(
                VoteOutput, description="Already stored (a retry), or your correction."
            ),
            **ANSWER_ERRORS,
        },
        summary="Answer a clip",
        tags=["annotate"],
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        result = services.assignment_answer(
            user=request.user, assignment_id=assignment_id, **_answer_input(request)
        )
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(vote_data(result.vote), status=code)


class AnswerNextView(APIView):
    """Answer your assignment and get your next clip in the same round trip.

    The answer behaves exactly as in "Answer a clip"; `next` is what "Next clip" would return
    (null when no clip is left for you).
    """

    parser_classes = [JSONParser]

    @extend_schema(
        request=AnswerInput,
        parameters=[ASSIGNMENT_ID, AHEAD],
        responses={
            201: OpenApiResponse(AnswerNextOutput, description="Answer stored now; next clip."),
            200: OpenApiResponse(
                AnswerNextOutput, description="Answer already stored (a retry) or corrected."
            ),
            **ANSWER_ERRORS,
            403: error_response(
                "`annotator_paused`: your answer is stored, but you are paused in this campaign "
                "and get no next clip until a reviewer reinstates you."
            ),
        },
        summary="Answer a clip and get the next",
        tags=["annotate"],
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        ahead = _ahead(request)
        # The gold draw of the clip ahead, which the answer's own statement may claim.
        draw = random.random() if ahead else None
        result = services.assignment_answer(
            user=request.user,
            assignment_id=assignment_id,
            then_next=True,
            ahead_draw=draw,
            **_answer_input(request),
        )
        leases = result.leases  # a fresh answer brings the membership and the leases
        if result.membership is not None:
            membership = result.membership
            campaign = membership.campaign
        else:
            campaign, membership = access_campaign(
                user=request.user, campaign_id=result.vote.campaign_id
            )
        # The answer is stored (a retry finds it); a paused annotator gets no next clip.
        quality.annotator_gate(membership=membership)
        offer = services.assignment_next(
            campaign=campaign, membership=membership, user=request.user, ahead=ahead,
            leases=leases, ahead_draw=draw,
        )  # fmt: skip
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        body = {
            "vote": vote_data(result.vote),
            "next": None if offer is None else offer_data(offer, user=request.user),
        }
        return Response(body, status=code)


class SkipView(APIView):
    """Give the clip back without answering; it is not offered to you again."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=None,
        parameters=[ASSIGNMENT_ID],
        responses={
            204: OpenApiResponse(description="Skipped (or already skipped)."),
            401: E401,
            404: E404_ASSIGNMENT,
            409: E409,
        },
        summary="Skip a clip",
        tags=["annotate"],
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        services.assignment_skip(user=request.user, assignment_id=assignment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LastAnswerView(APIView):
    """Your most recent answer in the campaign with its clip, to show it again for a correction.

    Correct it by sending a different label to the assignment's answer endpoint.
    """

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={
            200: LastAnswerOutput,
            204: OpenApiResponse(description="You have not answered anything here yet."),
            401: E401,
            404: E404_CAMPAIGN,
        },
        summary="Your last answer",
        tags=["annotate"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id)
        vote = selectors.vote_last(campaign_id=campaign_id, user=request.user)
        if vote is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        body = {
            "assignment": {"id": vote.assignment_id} if vote.assignment_id else None,
            "clip": selectors.ClipView.of(vote.task.clip),
            "vote": vote,
        }
        return Response(LastAnswerOutput(body, context={"request": request}).data)


class ProgressView(APIView):
    """How far the campaign is: clips by consensus status, gold, votes and open assignments."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: ProgressOutput, 401: E401, 403: E403, 404: E404_CAMPAIGN},
        summary="Campaign progress (reviewers)",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER)
        return Response(ProgressOutput(selectors.campaign_progress(campaign_id=campaign_id)).data)


class GoldView(APIView):
    """Set a clip's reference label, making it a gold check clip; null makes it ordinary again."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=GoldInput,
        parameters=[CAMPAIGN_ID, TASK_ID],
        responses={
            200: GoldOutput,
            400: E400,
            401: E401,
            403: E403,
            404: error_response("No such campaign (or not a member), or no such clip in it."),
        },
        summary="Set a gold label (reviewers)",
        tags=["review"],
    )
    def put(self, request: Request, campaign_id: int, task_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        data = GoldInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data["gold_label"]
        label = None if key is None else int(answer_from_key(key))
        task = services.task_set_gold(
            campaign=campaign, task_id=task_id, label=label, actor=request.user
        )
        return Response(GoldOutput(task).data)

    @extend_schema(
        parameters=[CAMPAIGN_ID, TASK_ID],
        responses={
            200: GoldOutput,
            401: E401,
            403: E403,
            404: error_response("No such campaign (or not a member), or no such clip in it."),
        },
        summary="Retire a gold clip (reviewers)",
        tags=["review"],
    )
    def delete(self, request: Request, campaign_id: int, task_id: int) -> Response:
        """Retire a gold clip: it becomes an ordinary clip (the same as PUT with null)."""
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        task = services.task_set_gold(
            campaign=campaign, task_id=task_id, label=None, actor=request.user
        )
        return Response(GoldOutput(task).data)
