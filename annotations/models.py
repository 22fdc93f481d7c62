"""Campaigns, their members, the clips in them (tasks), leases and votes.

A Task is one clip inside one campaign: the unit annotators are assigned, and the row that holds
that clip's consensus in that campaign. A clip can so be labelled in several campaigns.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from labelstudio_ferv.expressions import Answer, Label


class Campaign(models.Model):
    """A labelling job over a set of clips, with its rules."""

    class Aggregation(models.TextChoices):
        MAJORITY = "majority", "Majority with minimum agreement"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    votes_per_clip = models.PositiveSmallIntegerField(
        default=3, help_text="Votes every clip needs before it is decided."
    )
    max_votes = models.PositiveSmallIntegerField(
        default=5, help_text="The most votes a disputed clip may get before review."
    )
    min_agreement = models.FloatField(
        default=2 / 3, help_text="Share of votes the leading class needs to be trusted."
    )
    gold_share = models.FloatField(default=0.05, help_text="Share of gold clips in each stream.")
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long an assignment holds its clip for an annotator."
    )
    batch_size = models.PositiveSmallIntegerField(
        default=100, help_text="Answered clips per gold-scored batch."
    )
    aggregation = models.CharField(
        max_length=16, choices=Aggregation.choices, default=Aggregation.MAJORITY
    )
    ds_threshold = models.FloatField(
        default=0.9, help_text="Dawid-Skene posterior needed to trust a clip."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(votes_per_clip__gte=1), name="campaign_votes_min"),
            models.CheckConstraint(
                condition=Q(max_votes__gte=F("votes_per_clip")), name="campaign_max_votes"
            ),
            models.CheckConstraint(
                condition=Q(gold_share__gte=0) & Q(gold_share__lte=1), name="campaign_gold_share"
            ),
            models.CheckConstraint(
                condition=Q(min_agreement__gt=0) & Q(min_agreement__lte=1),
                name="campaign_min_agreement",
            ),
            models.CheckConstraint(condition=Q(lease_seconds__gte=10), name="campaign_lease"),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="campaign_batch_size"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    """A user's role in one campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ANNOTATOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.campaign}"


class ConsensusStatus(models.TextChoices):
    COLLECTING = "collecting", "Collecting votes"
    TRUSTED = "trusted", "Trusted"
    DISPUTED = "disputed", "Disputed"
    DISCARDED = "discarded", "Discarded"
    ADJUDICATED = "adjudicated", "Adjudicated"


def empty_counts() -> list[int]:
    return [0] * len(Answer)


class Task(models.Model):
    """A clip in a campaign, with that clip's consensus in the campaign.

    ``counts`` holds the valid votes per answer, indexed like ``Answer`` (PASS last);
    ``vote_count`` is their sum and ``votes_needed`` the number the clip currently asks for.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="tasks")
    clip = models.ForeignKey("clips.Clip", on_delete=models.PROTECT, related_name="tasks")
    is_gold = models.BooleanField(default=False)
    gold_label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    votes_needed = models.PositiveSmallIntegerField(default=3)
    vote_count = models.PositiveSmallIntegerField(default=0)
    counts = models.JSONField(default=empty_counts)
    status = models.CharField(
        max_length=16, choices=ConsensusStatus.choices, default=ConsensusStatus.COLLECTING
    )
    label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    agreement = models.FloatField(default=0.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "clip"], name="task_clip_once"),
            models.CheckConstraint(
                condition=~Q(is_gold=True) | Q(gold_label__isnull=False),
                name="task_gold_has_label",
            ),
            models.CheckConstraint(
                condition=Q(label__isnull=True) | Q(label__lte=6), name="task_label_is_class"
            ),
            models.CheckConstraint(
                condition=Q(gold_label__isnull=True) | Q(gold_label__lte=6),
                name="task_gold_is_class",
            ),
            models.CheckConstraint(
                condition=Q(agreement__gte=0) & Q(agreement__lte=1), name="task_agreement_share"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["trusted", "adjudicated"]) | Q(label__isnull=False),
                name="task_final_has_label",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="task_campaign_status")]

    def __str__(self) -> str:
        return f"task {self.pk} (clip {self.clip_id} in campaign {self.campaign_id})"


class Assignment(models.Model):
    """A lease on a task for one annotator, until ``expires_at``."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        ANSWERED = "answered", "Answered"
        SKIPPED = "skipped", "Skipped"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One clip per annotator at a time in a campaign, and never the same clip twice.
            models.UniqueConstraint(
                fields=["campaign", "annotator"],
                condition=Q(state="active"),
                name="assignment_one_active",
            ),
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_task_once"),
        ]
        indexes = [models.Index(fields=["task", "expires_at"], name="assignment_task_live")]


class Vote(models.Model):
    """One annotator's answer to one clip in a campaign; the database keeps it to one."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="votes")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="votes")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes"
    )
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="vote"
    )
    answer = models.PositiveSmallIntegerField(choices=Answer.choices)
    time_ms = models.PositiveIntegerField(null=True, blank=True)
    # Votes of a batch that failed its gold checks stop counting; they are marked, never deleted.
    is_valid = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="vote_once_per_clip"),
            models.CheckConstraint(condition=Q(answer__lte=7), name="vote_answer_known"),
        ]
        indexes = [
            models.Index(fields=["campaign", "annotator", "created_at"], name="vote_annotator"),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}: {Answer(self.answer).key}"
