"""The blind audit (issue 14): a fixed share of trusted clips, labelled by reviewers who do not
see the votes or the label; their answers give measured precision with a Wilson interval.

The sample is decided by the task id alone, so it is blind to the votes and stable: a trusted
clip is in it when ``(id * 5761) % 10000 < audit_share * 10000``. As 5761 and 10000 are
coprime, consecutive ids cover every residue once per 10,000, so the share is exact over any
10,000 consecutive tasks.
"""

from __future__ import annotations

import math

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import ExpressionWrapper, F, IntegerField, QuerySet

from clips.models import Scenario, Scene
from labelstudio_ferv.errors import Conflict, NotFound

from .models import AuditAnswer, Campaign, ConsensusStatus, Task

_MULTIPLIER = 5761
_MODULUS = 10000


def in_sample(task_id: int, share: float) -> bool:
    """Whether a task is in the audit sample (the SQL of ``sampled`` in Python)."""
    return (task_id * _MULTIPLIER) % _MODULUS < round(share * _MODULUS)


def sampled(campaign: Campaign) -> QuerySet[Task]:
    """The campaign's trusted (not gold) tasks in the audit sample."""
    line = round(campaign.audit_share * _MODULUS)
    return (
        Task.objects.filter(campaign=campaign, status=ConsensusStatus.TRUSTED, is_gold=False)
        .annotate(audit_key=ExpressionWrapper(F("id") * _MULTIPLIER % _MODULUS, IntegerField()))
        .filter(audit_key__lt=line)
    )


def audit_queue(*, campaign: Campaign, limit: int = 20) -> list[Task]:
    """The sampled trusted clips nobody has audited yet, by id (the clip only)."""
    return list(
        sampled(campaign)
        .filter(audit_answer__isnull=True)
        .select_related("clip")
        .order_by("id")[:limit]
    )


def audit_answer(
    *, campaign: Campaign, reviewer: AbstractBaseUser, task_id: int, answer: int
) -> AuditAnswer:
    """Store a reviewer's blind answer on a sampled clip; 404 if not in the sample, 409 if
    already audited."""
    task = sampled(campaign).filter(pk=task_id).first()
    if task is None:
        raise NotFound("This clip is not in the audit sample (or no longer trusted).")
    try:
        with transaction.atomic():
            return AuditAnswer.objects.create(
                campaign=campaign, task=task, reviewer=reviewer, answer=answer,
                label_then=task.label,
            )  # fmt: skip
    except IntegrityError:
        raise Conflict("This clip was already audited.", code="already_audited") from None


def wilson(right: int, n: int, z: float = 1.96) -> list[float] | None:
    """The Wilson score interval of a proportion (95 % by default); None without answers."""
    if n == 0:
        return None
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def audit_precision(*, campaign_id: int) -> dict:
    """Measured precision of the trusted labels: overall, per scenario and per scene.

    An audited clip counts as right when the reviewer's answer equals the clip's current
    label (clips no longer trusted are left out)."""
    rows = list(
        AuditAnswer.objects.filter(
            campaign_id=campaign_id, task__status=ConsensusStatus.TRUSTED
        ).values_list(
            "answer", "task__label", "task__clip__scene_id", "task__clip__scene__scenario_id"
        )
    )
    scenes = dict(Scene.objects.values_list("id", "folder"))
    scenarios = dict(Scenario.objects.values_list("id", "name"))

    def summary(items: list[tuple]) -> dict:
        right = sum(1 for answer, label, *_ in items if answer == label)
        n = len(items)
        return {
            "audited": n,
            "right": right,
            "precision": round(right / n, 4) if n else None,
            "interval_95": wilson(right, n),
        }

    def grouped(position: int, names: dict) -> list[dict]:
        groups: dict[int, list[tuple]] = {}
        for row in rows:
            groups.setdefault(row[position], []).append(row)
        return [
            {"id": key, "name": names.get(key, str(key)), **summary(items)}
            for key, items in sorted(groups.items())
        ]

    campaign = Campaign.objects.get(pk=campaign_id)
    return {
        "share": campaign.audit_share,
        "sampled": sampled(campaign).count(),
        **summary(rows),
        "per_scenario": grouped(3, scenarios),
        "per_scene": grouped(2, scenes),
    }
