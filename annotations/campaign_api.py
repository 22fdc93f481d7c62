"""Campaign administration API: create and edit campaigns, pause, resume and close them.

Views check the shape of input, resolve ids through ``access_campaign`` and call one service of
services.py or campaigns.py; rules live there.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict

from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from labelstudio_ferv.errors import PermissionDenied, ValidationError
from labelstudio_ferv.expressions import CLASS_KEYS, answer_from_key
from labelstudio_ferv.openapi import E400, E401, error_response, path_id
from labelstudio_ferv.parsers import JSONParser

from . import campaigns, gold, priorities, rules, selectors, services
from .access import access_campaign
from .agreement import STATUS_KEYS
from .api import CampaignListView
from .guidelines import MAX_EXAMPLES_PER_CLASS, MAX_GUIDELINES_CHARS
from .models import Campaign, Role
from .review_api import ClassKeyField
from .serializers import ClipToAnnotateOutput

CAMPAIGN_ID = path_id("campaign_id", "A campaign you are a member of.")
E403_ADMIN = error_response("Only the campaign's admins (and superusers) may do this.")
E403_REVIEWER = error_response("Reviewers and admins only.")
E404 = error_response("No such campaign, or you are not a member of it.")


# --- shapes ------------------------------------------------------------------------------------


class CampaignInput(serializers.Serializer):
    """A campaign's name, text and rules; the service checks how the rules fit together."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=20000, allow_blank=True, required=False)
    votes_per_clip = serializers.IntegerField(min_value=1, max_value=rules.MAX_VOTES_CHECKED)
    max_votes = serializers.IntegerField(min_value=1, max_value=rules.MAX_VOTES_CHECKED)
    min_agreement = serializers.FloatField(min_value=0.01, max_value=1)
    gold_share = serializers.FloatField(min_value=0, max_value=1)
    lease_seconds = serializers.IntegerField(min_value=10, max_value=7 * 24 * 3600)
    batch_size = serializers.IntegerField(min_value=1, max_value=10000)
    aggregation = serializers.ChoiceField(choices=Campaign.Aggregation.choices)
    ds_threshold = serializers.FloatField(min_value=0.01, max_value=1)
    target_precision = serializers.FloatField(
        min_value=0.5, max_value=1,
        help_text="Posterior a clip's top class needs to be trusted (confidence rule): above 0.5 "
        "and below 1.",
    )  # fmt: skip
    audit_share = serializers.FloatField(
        min_value=0, max_value=1,
        help_text="Share of trusted clips sampled into the blind audit (0: no audit).",
    )  # fmt: skip
    qualification_clips = serializers.IntegerField(
        min_value=0, max_value=1000,
        help_text="Gold clips a newcomer answers, with feedback, before real clips (0: none).",
    )  # fmt: skip
    gold_max_answers = serializers.IntegerField(
        min_value=0, max_value=1_000_000,
        help_text="Answers after which a gold clip is retired and replaced (0: never).",
    )  # fmt: skip
    quality_confidence = serializers.FloatField(
        min_value=0, max_value=1,
        help_text="Posterior the gold evidence needs before a verdict goes against an annotator "
        "(a pause): above 0 and below 1.",
    )  # fmt: skip
    guidelines = serializers.CharField(
        max_length=MAX_GUIDELINES_CHARS, allow_blank=True, trim_whitespace=False,
        help_text="Markdown shown to annotators on their first visit and behind the help key "
        "(raw HTML is not rendered; the result is sanitised).",
    )  # fmt: skip
    guideline_examples = serializers.DictField(
        child=serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
            max_length=MAX_EXAMPLES_PER_CLASS,
        ),
        help_text="Example clips per class: {class key: [clip ids of this campaign]}.",
    )
    daily_quota = serializers.IntegerField(
        min_value=1, max_value=1_000_000, allow_null=True,
        help_text="Answers per annotator per day (server time zone) unless the membership sets "
        "its own; null: no limit. Once reached, next/ answers 409 `quota_reached`.",
    )  # fmt: skip
    scene_priority = serializers.DictField(
        child=serializers.IntegerField(
            min_value=priorities.PRIORITY_RANGE[0], max_value=priorities.PRIORITY_RANGE[1]
        ),
        help_text="Claim priority per scene (id, folder or name): clips of higher-priority "
        "scenes are handed out first; 0 is the default. Stored by scene id.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # On create, every rule not given takes the model's default.
        if not self.partial:
            for name, field in self.fields.items():
                if name != "name":
                    field.required = False


class CampaignPatchInput(CampaignInput):
    """Any subset of a campaign's fields."""

    name = serializers.CharField(max_length=200, required=False)


class CampaignDetailOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    state = serializers.ChoiceField(
        choices=Campaign.State.choices,
        help_text="paused or closed: no clips are handed out (next/ answers 409).",
    )
    votes_per_clip = serializers.IntegerField()
    max_votes = serializers.IntegerField()
    min_agreement = serializers.FloatField()
    gold_share = serializers.FloatField()
    lease_seconds = serializers.IntegerField()
    batch_size = serializers.IntegerField()
    aggregation = serializers.ChoiceField(choices=Campaign.Aggregation.choices)
    ds_threshold = serializers.FloatField()
    target_precision = serializers.FloatField()
    audit_share = serializers.FloatField()
    qualification_clips = serializers.IntegerField()
    gold_max_answers = serializers.IntegerField()
    quality_confidence = serializers.FloatField()
    guidelines = serializers.CharField(help_text="Markdown source.")
    guideline_examples = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField())
    )
    daily_quota = serializers.IntegerField(allow_null=True)
    scene_priority = serializers.DictField(
        child=serializers.IntegerField(), help_text="{scene id: priority}."
    )
    created_at = serializers.DateTimeField()


def _detail(campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
    return Response(CampaignDetailOutput(campaign).data, status=code)


def _admin(request: Request, campaign_id: int) -> Campaign:
    campaign, _ = access_campaign(user=request.user, campaign_id=campaign_id, min_role=Role.ADMIN)
    return campaign


# --- views -------------------------------------------------------------------------------------


class CampaignsView(CampaignListView):
    """Your campaigns (GET), or a new campaign of which you become the admin (POST)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=CampaignInput,
        responses={
            201: CampaignDetailOutput,
            400: E400,
            401: E401,
            403: error_response(
                "You may not create campaigns (superusers and holders of the "
                "annotations.add_campaign permission may)."
            ),
        },
        summary="Create a campaign",
        tags=["campaigns"],
    )
    def post(self, request: Request) -> Response:
        if not campaigns.user_may_create_campaigns(request.user):
            raise PermissionDenied("You may not create campaigns.")
        data = CampaignInput(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = services.campaign_create(created_by=request.user, **data.validated_data)
        return _detail(campaign, status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    """A campaign's rules and state (any member); admins change them with PATCH."""

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: CampaignDetailOutput, 401: E401, 404: E404},
        summary="A campaign's rules and state",
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        # A superuser who is not a member sees it too (access_campaign keeps annotating,
        # the annotator level, to members).
        least = Role.REVIEWER if request.user.is_superuser else Role.ANNOTATOR
        campaign, _ = access_campaign(user=request.user, campaign_id=campaign_id, min_role=least)
        return _detail(campaign)

    @extend_schema(
        request=CampaignPatchInput,
        parameters=[CAMPAIGN_ID],
        responses={200: CampaignDetailOutput, 400: E400, 401: E401, 403: E403_ADMIN, 404: E404},
        summary="Edit a campaign's rules (admins)",
        tags=["campaigns"],
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        data = CampaignPatchInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        campaign = campaigns.campaign_update(
            campaign=campaign, actor=request.user, **data.validated_data
        )
        return _detail(campaign)


STATE_RESPONSES = {
    200: CampaignDetailOutput,
    401: E401,
    403: E403_ADMIN,
    404: E404,
    409: error_response("The campaign is closed (code `campaign_closed`)."),
}


class CampaignPauseView(APIView):
    """Stop handing out clips; answers to clips already held still count. Pausing a paused
    campaign changes nothing."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Pause a campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_pause(campaign=campaign, actor=request.user))


class CampaignResumeView(APIView):
    """Hand out clips again. A closed campaign cannot be resumed (409 `campaign_closed`)."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Resume a paused campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_resume(campaign=campaign, actor=request.user))


class CampaignCloseView(APIView):
    """Close the campaign for good: no more clips are handed out; review and exports go on."""

    @extend_schema(
        request=None,
        parameters=[CAMPAIGN_ID],
        responses=STATE_RESPONSES,
        summary="Close a campaign (admins)",
        tags=["campaigns"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _admin(request, campaign_id)
        return _detail(campaigns.campaign_close(campaign=campaign, actor=request.user))


# --- people ------------------------------------------------------------------------------------


class MemberRowInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)


class MembersInput(serializers.Serializer):
    members = MemberRowInput(many=True, allow_empty=False, max_length=campaigns.MAX_MEMBER_ROWS)
    create_missing = serializers.BooleanField(
        default=False,
        help_text="Create an account for each username that does not exist yet; its one-time "
        "password is in the answer, and never shown again.",
    )


class PartialQuery(serializers.Serializer):
    partial = serializers.BooleanField(
        default=False,
        help_text="Apply the valid rows and report the others, instead of all-or-nothing.",
    )


class MemberOutput(serializers.Serializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)
    served = serializers.IntegerField(help_text="Clips handed to this member so far.")
    daily_quota = serializers.IntegerField(
        allow_null=True, help_text="This member's answers per day; null: the campaign's."
    )
    created_at = serializers.DateTimeField(help_text="When the member joined.")


class MemberRowOutput(serializers.Serializer):
    row = serializers.IntegerField(help_text="Index of the row in the request, from 0.")
    username = serializers.CharField()
    role = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["added", "created", "error"], help_text="created: a new account."
    )
    password = serializers.CharField(
        allow_null=True,
        help_text="The new account's password: shown in this answer only, stored hashed.",
    )
    field = serializers.CharField(allow_null=True, help_text="The field in error.")
    error = serializers.CharField(allow_null=True)


class MembersAddedOutput(serializers.Serializer):
    rows = MemberRowOutput(many=True)


class MemberPatchInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    daily_quota = serializers.IntegerField(
        min_value=1, max_value=1_000_000, allow_null=True, required=False,
        help_text="Answers per day for this member; null: the campaign's `daily_quota`.",
    )  # fmt: skip

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Give a role or a daily_quota.")
        return attrs


USERNAME = OpenApiParameter(
    "username", str, OpenApiParameter.PATH, description="A member's username."
)
E404_MEMBER = error_response("No such campaign (or not a member), or no such member in it.")
E409_ADMIN = error_response("A campaign keeps at least one admin (code `last_admin`).")


def _partial(request: Request) -> bool:
    query = PartialQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["partial"]


class MembersView(APIView):
    """The campaign's members (reviewers and admins); admins add people in bulk.

    POST is all-or-nothing: with any row in error nothing changes and the 400 lists every row
    in `details.rows`; with `partial=1` the valid rows are added and the others reported.
    """

    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={200: MemberOutput(many=True), 401: E401, 403: E403_REVIEWER, 404: E404},
        summary="Members of a campaign",
        tags=["people"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        return Response(MemberOutput(selectors.members_of(campaign_id=campaign.pk), many=True).data)

    @extend_schema(
        request=MembersInput,
        parameters=[CAMPAIGN_ID, PartialQuery],
        responses={
            201: MembersAddedOutput,
            400: E400,
            401: E401,
            403: E403_ADMIN,
            404: E404,
            409: error_response("Someone changed these members at the same time (`busy`)."),
        },
        summary="Add members, creating accounts (admins)",
        tags=["people"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        partial = _partial(request)
        campaign = _admin(request, campaign_id)
        data = MembersInput(data=request.data)
        data.is_valid(raise_exception=True)
        rows = campaigns.members_add(
            campaign=campaign,
            actor=request.user,
            rows=data.validated_data["members"],
            create_missing=data.validated_data["create_missing"],
            partial=partial,
        )
        body = MembersAddedOutput({"rows": [asdict(r) for r in rows]}).data
        # The one-time passwords must not linger in any cache.
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class MemberView(APIView):
    """Change a member's role, or remove them (admins)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=MemberPatchInput,
        parameters=[CAMPAIGN_ID, USERNAME],
        responses={
            200: MemberOutput,
            400: E400,
            401: E401,
            403: E403_ADMIN,
            404: E404_MEMBER,
            409: E409_ADMIN,
        },
        summary="Change a member's role (admins)",
        tags=["people"],
    )
    def patch(self, request: Request, campaign_id: int, username: str) -> Response:
        campaign = _admin(request, campaign_id)
        data = MemberPatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = campaigns.member_update(
            campaign=campaign, actor=request.user, username=username, **data.validated_data
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(
        parameters=[CAMPAIGN_ID, USERNAME],
        responses={
            204: OpenApiResponse(
                description="Removed; their open clips were released, their votes stay."
            ),
            401: E401,
            403: E403_ADMIN,
            404: E404_MEMBER,
            409: E409_ADMIN,
        },
        summary="Remove a member (admins)",
        tags=["people"],
    )
    def delete(self, request: Request, campaign_id: int, username: str) -> Response:
        campaign = _admin(request, campaign_id)
        campaigns.member_remove(campaign=campaign, actor=request.user, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- tasks -------------------------------------------------------------------------------------


class TasksQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_KEYS, required=False)
    scene = serializers.CharField(max_length=64, required=False, help_text="A scene's name.")
    scenario = serializers.CharField(max_length=64, required=False, help_text="A scenario's name.")
    label = ClassKeyField(required=False, help_text="The consensus label.")
    gold = serializers.BooleanField(required=False, allow_null=True, default=None)
    clip = serializers.CharField(
        max_length=255, required=False, help_text="A clip id, or the name it arrived under."
    )
    agreement_min = serializers.FloatField(min_value=0, max_value=1, required=False)
    agreement_max = serializers.FloatField(min_value=0, max_value=1, required=False)
    after = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, required=False, help_text="`next_after` of a page."
    )
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


def _label_key(value: int | None) -> str | None:
    return None if value is None else CLASS_KEYS[value]


class TaskRowOutput(serializers.Serializer):
    id = serializers.IntegerField(help_text="The task id (the clip in this campaign).")
    clip = serializers.IntegerField(source="clip_id")
    clip_name = serializers.CharField(source="clip__name")
    scene = serializers.CharField(source="clip__scene__name")
    scenario = serializers.CharField(source="clip__scene__scenario__name")
    status = serializers.CharField(help_text="One of " + ", ".join(STATUS_KEYS) + ".")
    label = serializers.SerializerMethodField()
    gold = serializers.BooleanField(source="is_gold")
    gold_label = serializers.SerializerMethodField()
    votes = serializers.IntegerField(source="vote_count")
    votes_needed = serializers.IntegerField()
    agreement = serializers.FloatField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_label(self, row) -> str | None:
        return _label_key(row["label"])

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_gold_label(self, row) -> str | None:
        return _label_key(row["gold_label"])


class TaskPageOutput(serializers.Serializer):
    items = TaskRowOutput(many=True)
    next_after = serializers.IntegerField(allow_null=True, help_text="Null on the last page.")


class TasksView(APIView):
    """The campaign's clips (tasks) in id order, filtered, a page at a time (reviewers and
    admins). Pages are keyset-paginated: pass `next_after` as `after`."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, TasksQuery],
        responses={200: TaskPageOutput, 400: E400, 401: E401, 403: E403_REVIEWER, 404: E404},
        summary="Tasks of a campaign",
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        query = TasksQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        filters = {k: v for k, v in query.validated_data.items() if v is not None}
        if "label" in filters:
            filters["label"] = int(answer_from_key(filters["label"]))
        items, next_after = selectors.tasks_page(campaign_id=campaign.pk, **filters)
        return Response(TaskPageOutput({"items": items, "next_after": next_after}).data)


# --- audit -------------------------------------------------------------------------------------


class AuditQuery(serializers.Serializer):
    before = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, required=False, help_text="`next_before` of a page."
    )
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)


class AuditEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    action = serializers.CharField(
        help_text="campaign_created, campaign_edited, campaign_paused, campaign_resumed, "
        "campaign_closed, members_added, member_role_changed, member_removed, gold_set, "
        "gold_retired, gold_imported, review_decision (a clip), batch_decision (an Improper "
        "batch)."
    )
    details = serializers.JSONField()


class AuditPageOutput(serializers.Serializer):
    items = AuditEntryOutput(many=True)
    next_before = serializers.IntegerField(allow_null=True, help_text="Null on the last page.")


class AuditView(APIView):
    """Who changed what in the campaign, newest first (reviewers and admins). Append-only.

    Review decisions appear here too; their full before/after is in `review/decisions/`."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, AuditQuery],
        responses={200: AuditPageOutput, 400: E400, 401: E401, 403: E403_REVIEWER, 404: E404},
        summary="Audit log of a campaign",
        tags=["campaigns"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        query = AuditQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        items, next_before = selectors.audit_page(campaign_id=campaign.pk, **query.validated_data)
        return Response(AuditPageOutput({"items": items, "next_before": next_before}).data)


# --- gold --------------------------------------------------------------------------------------


class CSVTextParser(BaseParser):
    """A CSV body, read as UTF-8 text (a BOM is dropped)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        try:
            return stream.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("csv: the file is not UTF-8 text.", details={"csv": ["UTF-8"]})


class GoldRowOutput(serializers.Serializer):
    row = serializers.IntegerField(help_text="Line number in the CSV, from 1.")
    clip = serializers.CharField()
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=["gold", "unchanged", "error"])
    task = serializers.IntegerField(allow_null=True)
    clip_id = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class GoldImportOutput(serializers.Serializer):
    rows = GoldRowOutput(many=True)


class GoldCandidatesQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=gold.MAX_CANDIDATES, default=50)


class GoldCandidateOutput(serializers.Serializer):
    task = serializers.IntegerField(
        help_text="The task id: PUT `tasks/{task}/gold/` sets its gold."
    )
    clip = ClipToAnnotateOutput()
    clip_name = serializers.CharField()
    scene = serializers.CharField()
    scenario = serializers.CharField()
    stratum = serializers.SerializerMethodField(
        help_text="The likely class the sample was drawn for (the consensus label or the "
        "model's leading class; null: none yet). The gold workspace does not show it, so a "
        "reviewer labels blind."
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_stratum(self, row) -> str | None:
        return _label_key(row["likely"])


class GoldCoverageOutput(serializers.Serializer):
    clips = serializers.IntegerField(help_text="Clips in the campaign (not counting failed media).")
    gold = serializers.IntegerField(help_text="Gold clips now.")
    target = serializers.IntegerField(help_text="`gold_share` of the clips, rounded up.")


class GoldCandidatesOutput(serializers.Serializer):
    items = GoldCandidateOutput(many=True)
    coverage = GoldCoverageOutput()


class GoldCandidatesView(APIView):
    """Clips to label as gold next: a stratified sample across scenes and likely classes, one
    clip per (scene, likely class) in turn (reviewers and admins). Label one with
    `PUT tasks/{task}/gold/`; it then leaves the sample. The same call gives the same sample
    until clips are labelled."""

    @extend_schema(
        parameters=[CAMPAIGN_ID, GoldCandidatesQuery],
        responses={
            200: GoldCandidatesOutput,
            400: E400,
            401: E401,
            403: E403_REVIEWER,
            404: E404,
        },  # fmt: skip
        summary="Clips to label as gold (stratified sample)",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        query = GoldCandidatesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        body = {
            "items": gold.gold_candidates(campaign_id=campaign.pk, **query.validated_data),
            "coverage": gold.gold_coverage(campaign=campaign),
        }
        return Response(GoldCandidatesOutput(body, context={"request": request}).data)


class GoldImportView(APIView):
    """Make clips gold from CSV rows `clip,label` (a header line `clip,label` is optional): the
    clip by id or by name, the label a class key (reviewers and admins).

    All-or-nothing: with any row in error nothing changes and the 400 lists every row in
    `details.rows`; with `partial=1` the valid rows are applied and the others reported."""

    parser_classes = [CSVTextParser]

    @extend_schema(
        request={"text/csv": {"type": "string", "example": "clip,label\nclip-1.mp4,happy\n"}},
        parameters=[CAMPAIGN_ID, PartialQuery],
        responses={200: GoldImportOutput, 400: E400, 401: E401, 403: E403_REVIEWER, 404: E404},
        summary="Import gold labels from CSV",
        tags=["review"],
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        partial = _partial(request)
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        text = request.data if isinstance(request.data, str) else ""
        rows = gold.gold_import(campaign=campaign, actor=request.user, text=text, partial=partial)
        return Response(GoldImportOutput({"rows": [asdict(r) for r in rows]}).data)


class GoldExportView(APIView):
    """The campaign's gold clips as CSV `clip_id,clip_name,label` (reviewers and admins); the
    same file imports back (by id)."""

    @extend_schema(
        parameters=[CAMPAIGN_ID],
        responses={
            (200, "text/csv"): OpenApiResponse(
                {"type": "string"}, description="clip_id,clip_name,label"
            ),
            401: E401,
            403: E403_REVIEWER,
            404: E404,
        },
        summary="Export gold labels as CSV",
        tags=["review"],
    )
    def get(self, request: Request, campaign_id: int) -> HttpResponse:
        campaign, _ = access_campaign(
            user=request.user, campaign_id=campaign_id, min_role=Role.REVIEWER
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["clip", "clip_name", "label"])
        writer.writerows(gold.gold_export_rows(campaign_id=campaign.pk))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="gold-{campaign.pk}.csv"'
        return response
