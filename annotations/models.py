"""Campaigns, their members, the clips in them (tasks), leases and votes.

A Task is one clip inside one campaign: the unit annotators are assigned, and the row that holds
that clip's consensus in that campaign. A clip can so be labelled in several campaigns.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from labelstudio_ferv.expressions import Answer, Label

from . import agreement
from .agreement import Status


class Campaign(models.Model):
    """A labelling job over a set of clips, with its rules."""

    class Aggregation(models.TextChoices):
        CONFIDENCE = "confidence", "Posterior from each voter's confusion, to a target precision"
        MAJORITY = "majority", "Majority with minimum agreement"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene"

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    votes_per_clip = models.PositiveSmallIntegerField(
        default=3, help_text="Votes every clip needs before it is decided."
    )
    # 5 for the confidence rule (the default), which a 4th or 5th vote can settle. Under the
    # plain 2/3 vote-share rule 3 and 5 cannot be combined: the only unsettled split at 3 votes
    # is 1-1-1 and no 4th or 5th vote lifts it to 2/3, so rules.py refuses that campaign.
    max_votes = models.PositiveSmallIntegerField(
        default=5, help_text="The most votes a disputed clip may get before review."
    )
    min_agreement = models.FloatField(
        default=2 / 3, help_text="Share of votes the leading class needs to be trusted."
    )
    gold_share = models.FloatField(default=0.05, help_text="Share of gold clips in each stream.")
    gold_max_answers = models.PositiveIntegerField(
        default=20,
        help_text="Answers after which a gold clip is retired and replaced (0: never retired).",
    )
    audit_share = models.FloatField(
        default=0.02,
        help_text="Share of trusted clips sampled into the blind audit (reviewers label them "
        "without seeing votes; their answers measure precision).",
    )
    qualification_clips = models.PositiveSmallIntegerField(
        default=10,
        help_text="A newcomer's first clips are gold with the right answer shown after each; "
        "real clips come after passing (0: no qualification).",
    )
    lease_seconds = models.PositiveIntegerField(
        default=600, help_text="How long an assignment holds its clip for an annotator."
    )
    batch_size = models.PositiveSmallIntegerField(
        default=100, help_text="Answered clips per gold-scored batch."
    )
    quality_confidence = models.FloatField(
        default=0.97,
        help_text="Posterior probability the gold evidence needs before a verdict goes against "
        "an annotator (Improper, Unacceptable and the pause).",
    )
    aggregation = models.CharField(
        max_length=16, choices=Aggregation.choices, default=Aggregation.CONFIDENCE
    )
    target_precision = models.FloatField(
        default=0.97,
        help_text="Posterior a clip's top class needs to be trusted (confidence aggregation).",
    )
    ds_threshold = models.FloatField(
        default=0.9, help_text="Dawid-Skene posterior needed to trust a clip."
    )
    # Paused or closed, the campaign hands out no clip; answers to leases held still count.
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    # What annotators read before their first clip and behind the help key: Markdown, shown
    # rendered and sanitised (guidelines.py); examples are clip ids per class key.
    guidelines = models.TextField(blank=True)
    guideline_examples = models.JSONField(default=dict, blank=True)
    # Answers an annotator may give per day (server time zone) unless their membership says
    # otherwise; null: no limit. ``next/`` then answers 409 ``quota_reached``.
    daily_quota = models.PositiveIntegerField(null=True, blank=True)
    # Claim priority per scene id (as a string key): higher first. Copied into Task.priority,
    # which the claim sorts on first (see ASSIGNMENT.md, "Scene priority").
    scene_priority = models.JSONField(default=dict, blank=True)
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
            models.CheckConstraint(
                condition=Q(target_precision__gt=0.5) & Q(target_precision__lt=1),
                name="campaign_target_precision",
            ),
            models.CheckConstraint(
                condition=Q(quality_confidence__gt=0) & Q(quality_confidence__lt=1),
                name="campaign_quality_confidence",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def refusal(self) -> tuple[str, str] | None:
        """Return why the campaign hands out no clip now, as ``(message, code)``, or None."""
        if self.state == self.State.PAUSED:
            return "This campaign is paused: no clips are handed out until it resumes.", (
                "campaign_paused"
            )
        if self.state == self.State.CLOSED:
            return "This campaign is closed: it hands out no more clips.", "campaign_closed"
        return None


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
    # Clips handed to this member, and how many of them were gold: the claim keeps gold near
    # the campaign's share of each stream with these (see ASSIGNMENT.md).
    served = models.PositiveIntegerField(default=0)
    gold_served = models.PositiveIntegerField(default=0)
    # Set while the member is paused in this campaign (an Unacceptable verdict, or accuracy
    # confidently below the line): ``next/`` refuses them until a reviewer reinstates them.
    # Every pause and reinstatement is recorded in ``AnnotatorPause``.
    paused_at = models.DateTimeField(null=True, blank=True)
    # When the member passed the campaign's qualification (None: not yet, or none asked).
    qualified_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)
    # This member's answers per day; null: the campaign's ``daily_quota``.
    daily_quota = models.PositiveIntegerField(null=True, blank=True)
    # Rated at each fit of the campaign's trust model (``consensus.model_store``): the
    # member's estimated accuracy is in the top third of the working annotators'. A clip
    # that already holds ``votes_per_clip`` votes (its next vote is an extra one) goes to such
    # members first; the others get it only when nothing else is left (AGGREGATION.md).
    informative = models.BooleanField(default=True)
    # When this member's gold queue (GoldTurn) was last built; null: never, or the campaign's
    # gold grew since (``gold.gold_queues_reset``).
    gold_queue_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.role} in {self.campaign}"

    def quota(self, campaign: "Campaign") -> int | None:
        """Return the answers per day this member may give in ``campaign`` (None: no limit)."""
        return self.daily_quota if self.daily_quota is not None else campaign.daily_quota

    def gold_due(self, *, share: float, draw: float) -> bool:
        """Return whether this member's next clip should be gold, given a uniform ``draw``.

        The chance is the gold this member is owed after one more clip (``share * (served + 1)``
        minus the gold already served): near ``share`` in a steady stream, certain once a whole
        clip's worth is owed, nil while ahead. Gold stays close to its share in every stretch of
        the stream, at positions an annotator cannot predict.
        """
        return draw < share * (self.served + 1) - self.gold_served


class ConsensusStatus(models.TextChoices):
    """A clip's consensus status, stored as the key of ``agreement.Status`` (its one definition;
    the numerics work on its codes)."""

    COLLECTING = Status.COLLECTING.key, "Collecting votes"
    TRUSTED = Status.TRUSTED.key, "Trusted"
    DISPUTED = Status.DISPUTED.key, "Disputed"
    DISCARDED = Status.DISCARDED.key, "Discarded"
    ADJUDICATED = Status.ADJUDICATED.key, "Adjudicated"


def empty_counts() -> list[int]:
    return [0] * len(Answer)


class Task(models.Model):
    """A clip in a campaign, with that clip's consensus in the campaign.

    ``counts`` holds the valid votes per answer, indexed like ``Answer`` (PASS last);
    ``vote_count`` is their sum and ``votes_needed`` the number the clip currently asks for.
    ``lease_count`` is the number of open assignments holding one of the clip's slots; the claim
    hands out a slot only while ``vote_count + lease_count < votes_needed`` (see ASSIGNMENT.md).
    """

    # Indexed by the composite indexes below, which all begin with the campaign (every update of
    # a task writes each of its indexes that covers the row: no index more than the reads need).
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="tasks", db_index=False
    )
    clip = models.ForeignKey("clips.Clip", on_delete=models.PROTECT, related_name="tasks")
    is_gold = models.BooleanField(default=False)
    gold_label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    # A gold clip answered by ``campaign.gold_max_answers`` annotators is no longer served (its
    # answer may be known around); a trusted clip of its class takes its place (see AGGREGATION.md).
    gold_retired = models.BooleanField(default=False)
    votes_needed = models.PositiveSmallIntegerField(default=3)
    vote_count = models.PositiveSmallIntegerField(default=0)
    lease_count = models.PositiveSmallIntegerField(default=0)
    counts = models.JSONField(default=empty_counts)
    status = models.CharField(
        max_length=16, choices=ConsensusStatus.choices, default=ConsensusStatus.COLLECTING
    )
    label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    agreement = models.FloatField(default=0.0)
    # Set in the transaction of every vote, cleared by the consensus update: a vote whose
    # message never reached a worker is still found and counted (consensus_sweep).
    consensus_stale = models.BooleanField(default=False)
    # Bumped with consensus_stale by every change to the task's votes. A whole-campaign
    # recompute writes a task only if this is still the value it loaded, so a vote that lands
    # while it runs is never overwritten by the older arrays (see AGGREGATION.md).
    vote_seq = models.PositiveBigIntegerField(default=0)
    # The Dawid-Skene view of the clip, computed for every campaign by the recompute.
    ds_label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    ds_confidence = models.FloatField(null=True, blank=True)
    # A reviewer's label or discard holds: the consensus keeps this task's status and label
    # whatever votes arrive (see REVIEW.md). Cleared by a reopen or a request for more votes.
    review_locked = models.BooleanField(default=False)
    # Votes a reviewer asked for on top of the campaign's: the task needs votes_per_clip +
    # extra_votes votes and may get up to max_votes + extra_votes.
    extra_votes = models.PositiveSmallIntegerField(default=0)
    # Bumped by every review decision; a decision names the version its reviewer saw, so two
    # reviewers deciding at once cannot both win.
    review_version = models.PositiveIntegerField(default=0)
    # The task's place in the claim's order among tasks with as many votes: random but the same
    # for every run of a campaign, and the k-th clip cut from a source video comes after the
    # (k-1)-th clip of every source (see ASSIGNMENT.md, "Order"). Set when the clip is added.
    draw = models.PositiveBigIntegerField(default=0)
    # The scene's priority in the campaign (Campaign.scene_priority): the claim serves higher
    # first, before the vote count and the draw.
    priority = models.SmallIntegerField(default=0)
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
                condition=~Q(status__in=[ConsensusStatus.TRUSTED, ConsensusStatus.ADJUDICATED])
                | Q(label__isnull=False),
                name="task_final_has_label",
            ),
            models.CheckConstraint(
                condition=Q(review_locked=False)
                | Q(status__in=[ConsensusStatus.ADJUDICATED, ConsensusStatus.DISCARDED]),
                name="task_lock_is_decision",
            ),
        ]
        indexes = [
            # With id: the task list filtered by status walks it in id order (cursor pages).
            models.Index(fields=["campaign", "status", "id"], name="task_campaign_status"),
            # Only decided tasks have a label: the updates of a collecting task skip it.
            models.Index(
                fields=["campaign", "label", "id"],
                condition=Q(label__isnull=False),
                name="task_campaign_label",
            ),
            # The claim's queue: exactly the tasks with a free slot, higher scene priority, then
            # fullest first. A task leaves it in the transaction that fills its last slot, so
            # the claim never walks over finished tasks waiting for their consensus.
            models.Index(
                "campaign",
                models.F("priority").desc(),
                models.F("vote_count").desc(),
                "draw",
                "id",
                condition=Q(status=ConsensusStatus.COLLECTING, is_gold=False)
                & Q(vote_count__lt=F("votes_needed") - F("lease_count")),
                name="task_open",
            ),
            models.Index(fields=["campaign", "id"], condition=Q(is_gold=True), name="task_gold"),
            models.Index(
                fields=["updated_at"], condition=Q(consensus_stale=True), name="task_stale"
            ),
            # The review queue: disputed clips, lowest agreement first (keyset pagination).
            models.Index(
                fields=["campaign", "agreement", "id"],
                condition=Q(status=ConsensusStatus.DISPUTED, is_gold=False),
                name="task_review_queue",
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.pk} (clip {self.clip_id} in campaign {self.campaign_id})"


class GoldTurn(models.Model):
    """One gold clip in a member's gold queue: the member's own order of the campaign's gold
    (``statements.gold_order``), built at once and then taken from the front, so that a gold
    claim reads a few rows instead of ranking every gold clip (see ``statements.CLAIM_GOLD``)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    rank = models.PositiveIntegerField()
    task = models.ForeignKey(Task, on_delete=models.CASCADE)

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "annotator", "rank"], name="goldturn_queue"),
        ]

    def __str__(self) -> str:
        return f"gold turn {self.rank} of annotator {self.annotator_id}: task {self.task_id}"


class Assignment(models.Model):
    """A lease on a task for one annotator, until ``expires_at``.

    An active assignment past ``expires_at`` still holds its slot until a claim in the campaign
    marks it expired; its annotator may still answer it (the vote is kept).
    """

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        ANSWERED = "answered", "Answered"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="assignments")
    # Indexed by assignment_task_once, which begins with the task.
    task = models.ForeignKey(
        Task, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    # Whether this lease counts in its task's lease_count (gold clips have no slots); recorded at
    # claim time so that a task turned gold meanwhile still gives its slot back.
    holds_slot = models.BooleanField(default=True)
    # Claimed in advance so that the browser can preload the clip while the annotator works on
    # the current one; it becomes the current one (ahead = false) once that is closed.
    ahead = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # At most one current clip and one clip ahead per annotator in a campaign, and
            # never the same clip twice.
            models.UniqueConstraint(
                fields=["campaign", "annotator", "ahead"],
                condition=Q(state="active"),
                name="assignment_one_active",
            ),
            models.UniqueConstraint(fields=["task", "annotator"], name="assignment_task_once"),
        ]
        # Every lease is written three times (made, closed, and the one ahead made current),
        # none of them a HOT update: each index here costs three entries per clip handed out.
        indexes = [
            # Finds the leases that ran out, for the claim to free their slots. Not by campaign
            # first: a user's own leases (campaign, annotator) are then found through
            # assignment_one_active, whose entries the same user's new leases keep clean, and not
            # through this one, which grows with every lease until a vacuum (its keys only rise).
            # The campaign second, so that the run-out leases of other campaigns (a paused one's
            # stay open until it resumes) are passed over in the index.
            models.Index(
                fields=["expires_at", "campaign"],
                condition=Q(state="active"),
                name="assignment_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.state}) of task {self.task_id}"


class Vote(models.Model):
    """One annotator's answer to one clip in a campaign; the database keeps it to one."""

    # Both indexed by composite indexes that begin with them (vote_campaign_time,
    # vote_once_per_clip): every vote inserted writes each index of the table.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="votes", db_index=False
    )
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="votes", db_index=False)
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
    invalidated_at = models.DateTimeField(null=True, blank=True)
    # Both null when a vote is stored: indexed only where set (vote_invalidated_by, vote_batch).
    invalidated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    batch = models.ForeignKey(
        "GoldBatch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="votes",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "annotator"], name="vote_once_per_clip"),
            models.CheckConstraint(condition=Q(answer__lte=7), name="vote_answer_known"),
        ]
        indexes = [
            models.Index(fields=["campaign", "annotator", "created_at"], name="vote_annotator"),
            # Progress over time: answers per hour of a campaign (statistics.progress_history).
            models.Index(fields=["campaign", "created_at"], name="vote_campaign_time"),
            # The votes not yet cut into a gold batch, per annotator (see batches.py).
            models.Index(
                fields=["campaign", "annotator"],
                condition=Q(batch__isnull=True),
                name="vote_unbatched",
            ),
            models.Index(fields=["batch"], condition=Q(batch__isnull=False), name="vote_batch"),
            models.Index(
                fields=["invalidated_by"],
                condition=Q(invalidated_by__isnull=False),
                name="vote_invalidated_by",
            ),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk}: {Answer(self.answer).key}"


class GoldBatch(models.Model):
    """A run of one annotator's answers, scored on the gold clips in it (see batches.py)."""

    class Verdict(models.TextChoices):
        """The verdict of ``agreement.score_batch`` (its one definition)."""

        ACCEPT = agreement.Verdict.ACCEPT.value, "Accept"
        IMPROPER = agreement.Verdict.IMPROPER.value, "Improper"
        UNACCEPTABLE = agreement.Verdict.UNACCEPTABLE.value, "Unacceptable"

    class Review(models.TextChoices):
        NONE = "", "Not needed"
        PENDING = "pending", "Waiting for a reviewer"
        ACCEPTED = "accepted", "Accepted by a reviewer"
        REJECTED = "rejected", "Rejected by a reviewer"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="batches")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="gold_batches"
    )
    number = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    gold_total = models.PositiveIntegerField()
    gold_correct = models.PositiveIntegerField()
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    review = models.CharField(max_length=16, choices=Review.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "annotator", "number"], name="batch_number_once"
            ),
            models.CheckConstraint(
                condition=Q(gold_correct__lte=F("gold_total")), name="batch_gold_correct"
            ),
            models.CheckConstraint(
                condition=~Q(verdict=agreement.Verdict.IMPROPER.value) | ~Q(review=""),
                name="batch_improper_reviewed",
            ),
        ]
        indexes = [
            models.Index(
                fields=["campaign", "created_at"],
                condition=Q(review="pending"),
                name="batch_review_queue",
            )
        ]

    def __str__(self) -> str:
        return f"batch {self.number} of {self.annotator} ({self.verdict})"

    @property
    def accuracy(self) -> float | None:
        return self.gold_correct / self.gold_total if self.gold_total else None


class TrustModel(models.Model):
    """A campaign's fitted model for the confidence rule: the state prior, and what the last
    recomputes changed (see AGGREGATION.md). Each annotator's confusion is an AnnotatorModel."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="trust_model")
    # The prior over the 7 classes and PASS (unlabellable), in Answer order.
    priors = models.JSONField(default=list)
    # What an annotator without fitted votes is believed to answer (8 x 8), and each scene's
    # shift of the log-odds of a right answer ({scene id: shift}); see AGGREGATION.md.
    newcomer = models.JSONField(default=list, blank=True)
    scene_shift = models.JSONField(default=dict, blank=True)
    # Valid votes the last fit saw: beat refits once the campaign has many more.
    votes_at_fit = models.PositiveIntegerField(default=0)
    fitted_at = models.DateTimeField(null=True, blank=True)
    recomputes = models.PositiveIntegerField(default=0)
    # Decisions (status or label) the last recompute changed, and all recomputes together:
    # with the votes unchanged, only a change of the fitted model changes a decision.
    last_changes = models.PositiveIntegerField(default=0)
    total_changes = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"trust model of campaign {self.campaign_id}"


class AnnotatorModel(models.Model):
    """One annotator's fitted confusion in a campaign: row k = P(answer | true state k), over
    the 7 classes and PASS. An annotator without a row has the newcomer prior's confusion."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    confusion = models.JSONField()
    votes = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="annotator_model_once")
        ]

    def __str__(self) -> str:
        return f"model of {self.annotator_id} in campaign {self.campaign_id}"


class AnnotatorPause(models.Model):
    """One pause or reinstatement of an annotator in a campaign: who, when and why (append-only).

    ``by`` is empty for a pause the quality check decided (then ``batch`` names the batch).
    """

    class Action(models.TextChoices):
        PAUSE = "pause", "Paused"
        REINSTATE = "reinstate", "Reinstated"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pauses")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="pauses"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    batch = models.ForeignKey(
        "GoldBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["campaign", "annotator", "id"], name="pause_annotator")]

    def __str__(self) -> str:
        return f"{self.action} of {self.annotator} in campaign {self.campaign_id}"


class CampaignStatistics(models.Model):
    """The latest agreement statistics of a campaign, as computed by a worker."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="statistics")
    data = models.JSONField(default=dict)
    computed_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "campaign statistics"

    def __str__(self) -> str:
        return f"statistics of campaign {self.campaign_id}"


class ReviewDecision(models.Model):
    """A reviewer's decision on one clip, with the task's state before and after it.

    The history is append-only: a decision is reversed by a later decision, never by editing or
    deleting this row (see REVIEW.md).
    """

    class Action(models.TextChoices):
        LABEL = "label", "Set the final label"
        DISCARD = "discard", "Discard the clip"
        MORE_VOTES = "more_votes", "Ask for more votes"
        REOPEN = "reopen", "Reopen: let the votes decide again"

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="decisions")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_decisions"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    label = models.PositiveSmallIntegerField(choices=Label.choices, null=True, blank=True)
    extra_votes = models.PositiveSmallIntegerField(default=0)
    note = models.TextField(blank=True)
    before = models.JSONField()
    after = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(action="label", label__isnull=False)
                | (~Q(action="label") & Q(label__isnull=True)),
                name="decision_label_iff_labelled",
            ),
            models.CheckConstraint(
                condition=~Q(action="more_votes") | Q(extra_votes__gte=1),
                name="decision_more_votes_count",
            ),
        ]
        indexes = [
            models.Index(fields=["task", "id"], name="decision_task"),
            models.Index(fields=["campaign", "id"], name="decision_campaign"),
        ]

    def __str__(self) -> str:
        return f"decision {self.pk} ({self.action}) on task {self.task_id}"


class ExportJob(models.Model):
    """One export of a campaign, written by a worker to storage (see REVIEW.md)."""

    class Kind(models.TextChoices):
        LABELS = "labels", "Labels CSV"
        VOTES = "votes", "Votes CSV"
        RELEASE = "release", "FERV39k release archive"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a worker"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exports")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="exports/", max_length=500, blank=True)
    error = models.TextField(blank=True)
    # Each run that takes the job over bumps ``attempt`` and writes only while it still holds
    # it; ``heartbeat_at`` tells a redelivered message whether the first run is still alive.
    attempt = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="done") | ~Q(file=""), name="export_done_has_file"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "-id"], name="export_campaign")]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.kind}, {self.status})"


class CampaignSourceVideo(models.Model):
    """The campaign a source video feeds: the clips its pipeline cuts become tasks there.

    A video feeds one campaign (the primary key is the video). Deleting a campaign deletes the
    link and leaves the media; another campaign may then adopt the video.
    """

    source_video = models.OneToOneField(
        "clips.SourceVideo",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="campaign_link",
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="source_video_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"source video {self.source_video_id} -> campaign {self.campaign_id}"


class AuditEntry(models.Model):
    """One change to a campaign: rules, state, membership, gold or a review decision.

    Append-only: services add rows in the transaction of the change they record, and nothing
    edits or deletes one (the admin shows them read-only).
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=32)
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["campaign", "-id"], name="audit_campaign")]

    def __str__(self) -> str:
        return f"{self.action} in campaign {self.campaign_id} at {self.created_at}"

    @classmethod
    def record(
        cls, *, campaign: Campaign, actor: models.Model | None, action: str, **details
    ) -> "AuditEntry":
        """Append an entry (in the caller's transaction)."""
        return cls.objects.create(
            campaign=campaign,
            actor=actor if actor is not None and actor.pk else None,
            action=action,
            details=details,
        )


class AuditAnswer(models.Model):
    """A reviewer's blind answer on a trusted clip sampled for the audit (see AGGREGATION.md):
    the reviewer saw the clip, not its votes or label. Compared with the clip's label, the
    answers measure the precision of trusted labels."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="audit_answer")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    answer = models.PositiveSmallIntegerField()
    # The clip's label when the reviewer answered (a later review may change it).
    label_then = models.PositiveSmallIntegerField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"audit of task {self.task_id}"


class VoteHour(models.Model):
    """One annotator's answers and active time in one campaign in one hour: a rollup of the
    votes for the progress history (history.py), written by a periodic task, never by the vote.

    ``hour`` is the start of the hour in the server's time zone (as ``TruncHour``). ``active_s``
    sums the gaps under ``history.ACTIVE_GAP_S`` before each answer of the hour, measured to the
    annotator's previous answer even when that one fell in an earlier hour.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    hour = models.DateTimeField()
    answers = models.PositiveIntegerField()
    active_s = models.FloatField()

    class Meta:
        constraints = [
            # An hour is rolled up once (the mark moves past it in the same transaction).
            models.UniqueConstraint(
                fields=["campaign", "hour", "annotator"], name="vote_hour_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.answers} answers of {self.annotator_id} at {self.hour:%Y-%m-%d %H}h"


class VoteHourMark(models.Model):
    """How far a campaign's votes are rolled up: every vote created before ``rolled_until`` (a
    whole hour) is counted in ``VoteHour``; later ones are read from the votes themselves."""

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    rolled_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"campaign {self.campaign_id} rolled up until {self.rolled_until}"
