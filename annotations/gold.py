"""The gold set in bulk: import reference labels from CSV rows, export them, per-row results.

One clip at a time goes through ``services.task_set_gold`` (the existing PUT and DELETE on a
task's gold); a bulk import checks every row first and applies all of them or none (or, when
asked, only the valid ones) in one transaction, with one audit entry.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, F, Q, Value, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from clips.models import MediaStatus
from labelstudio_ferv.errors import ValidationError
from labelstudio_ferv.expressions import CLASS_KEYS, Answer, answer_from_key

from .consensus import consensus_enqueue
from .models import AuditEntry, Campaign, ConsensusStatus, Task
from .selectors import ClipView
from .statements import gold_queues_reset

MAX_GOLD_ROWS = 20000
CSV_HEADER = ("clip", "label")


@dataclass
class GoldRow:
    """The outcome of one CSV row: ``gold`` (set), ``unchanged`` or ``error`` (naming why)."""

    row: int  # 1-based line number in the CSV
    clip: str
    label: str
    status: str = "gold"
    task: int | None = None
    clip_id: int | None = None
    field: str | None = None
    error: str | None = None


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if number == 1 and [c.strip().lower() for c in cells] == list(CSV_HEADER):
            continue
        yield number, cells


def gold_import(
    *, campaign: Campaign, actor: AbstractBaseUser, text: str, partial: bool = False
) -> list[GoldRow]:
    """Make the clips the CSV names gold with its labels; return one result per row.

    Each row is ``clip,label``: the clip by id (a number) or by the name it arrived under, the
    label a class key. A clip named twice, unknown in the campaign or whose name is ambiguous
    is an error. With any row in error nothing changes and ValidationError reports every row;
    with ``partial`` the valid rows are applied.
    """
    parsed = list(_rows(text))
    if len(parsed) > MAX_GOLD_ROWS:
        raise ValidationError(
            f"csv: at most {MAX_GOLD_ROWS} rows per import.",
            details={"csv": [f"At most {MAX_GOLD_ROWS} rows."]},
        )
    ids = {int(c[0]) for _, c in parsed if c and c[0].strip().isdigit() and len(c[0]) < 19}
    names = {c[0].strip() for _, c in parsed if c and not c[0].strip().isdigit()}
    tasks = Task.objects.filter(campaign=campaign).values_list("pk", "clip_id", "clip__name")
    by_id = {clip: task for task, clip, _ in tasks.filter(clip_id__in=ids)}
    by_name: dict[str, list[tuple[int, int]]] = {}
    for task, clip, name in tasks.filter(clip__name__in=names):
        by_name.setdefault(name, []).append((task, clip))
    results, seen = [], set()
    for number, cells in parsed:
        clip = cells[0].strip() if cells else ""
        label = cells[1].strip().lower() if len(cells) > 1 else ""
        result = GoldRow(row=number, clip=clip, label=label)
        problem = None
        if len(cells) != 2:
            problem = ("csv", f"Expected 2 columns (clip,label), found {len(cells)}.")
        elif label not in CLASS_KEYS:
            problem = ("label", f"{label!r} is not a class: one of {', '.join(CLASS_KEYS)}.")
        elif clip.isdigit() and int(clip) in by_id:
            result.task, result.clip_id = by_id[int(clip)], int(clip)
        elif not clip.isdigit() and len(by_name.get(clip, [])) == 1:
            result.task, result.clip_id = by_name[clip][0]
        elif not clip.isdigit() and len(by_name.get(clip, [])) > 1:
            problem = ("clip", f"{clip!r} names {len(by_name[clip])} clips here; use the id.")
        else:
            problem = ("clip", f"No clip {clip!r} in this campaign.")
        if problem is None and result.task in seen:
            problem = ("clip", f"Clip {clip!r} appears twice in this import.")
        if problem:
            result.status, result.field, result.error = "error", *problem
        else:
            seen.add(result.task)
        results.append(result)
    bad = [r for r in results if r.status == "error"]
    if bad and not partial:
        first = bad[0]
        more = f" ({len(bad) - 1} more rows in error)" if len(bad) > 1 else ""
        raise ValidationError(
            f"row {first.row}: {first.field}: {first.error}{more}",
            details={"rows": [asdict(r) for r in results]},
        )
    good = [r for r in results if r.status != "error"]
    with transaction.atomic():
        # Lock in id order: two imports touching the same clips cannot deadlock.
        current = {
            pk: gold
            for pk, gold in Task.objects.select_for_update()
            .filter(pk__in=[r.task for r in good])
            .order_by("pk")
            .values_list("pk", "gold_label")
        }
        changed = []
        for result in good:
            label = int(answer_from_key(result.label))
            if current.get(result.task) == label:
                result.status = "unchanged"
                continue
            Task.objects.filter(pk=result.task).update(
                is_gold=True, gold_label=label, updated_at=timezone.now()
            )
            consensus_enqueue(task_id=result.task)
            changed.append({"task": result.task, "clip": result.clip_id, "label": result.label})
        if changed:
            gold_queues_reset(campaign_id=campaign.pk)
            AuditEntry.record(
                campaign=campaign, actor=actor, action="gold_imported",
                count=len(changed), clips=changed[:1000],
            )  # fmt: skip
    return results


def gold_export_rows(*, campaign_id: int) -> Iterator[tuple[int, str, str]]:
    """Yield ``(clip id, clip name, label key)`` of a campaign's gold clips, by clip id."""
    rows = (
        Task.objects.filter(campaign_id=campaign_id, is_gold=True)
        .order_by("clip_id")
        .values_list("clip_id", "clip__name", "gold_label")
    )
    for clip_id, name, label in rows.iterator(chunk_size=2000):
        yield clip_id, name, Answer(label).key


MAX_CANDIDATES = 200
# What the workspace needs of each clip (selectors.ClipView), read in the same query.
CLIP_FIELDS = ("video", "poster", "duration_s", "fps", "frame_count", "width", "height")
UNKNOWN = -1  # the likely-class stratum of a clip with no leading class yet


def gold_candidates(*, campaign_id: int, limit: int = 50) -> list[dict]:
    """Return a stratified sample of clips to label as gold: one clip per (scene, likely class)
    stratum in turn, so the gold set covers every scene and class before any stratum repeats.

    The likely class is the clip's consensus label, else its leading class by the confidence or
    Dawid-Skene model (``ds_label``), else unknown. Within a stratum clips come in the campaign's
    claim order (``draw``), so the sample is random but the same on every call until clips are
    labelled. Gold clips, retired gold clips, discarded clips and clips whose media is not ready
    are left out. Each row: task id, clip, clip name, scene, scenario, likely class index.
    """
    likely = Coalesce("label", "ds_label", Value(UNKNOWN))
    rows = (
        Task.objects.filter(
            campaign_id=campaign_id,
            is_gold=False,
            gold_retired=False,
            clip__status=MediaStatus.READY,
        )  # fmt: skip
        .exclude(status=ConsensusStatus.DISCARDED)
        .annotate(
            likely=likely,
            rank=Window(
                RowNumber(),
                partition_by=[F("clip__scene_id"), likely],
                order_by=[F("draw").asc(), F("id").asc()],
            ),
        )
        .filter(rank__lte=limit)
        .order_by("rank", "clip__scene__position", "likely", "id")
        .values(
            "id",
            "clip_id",
            "clip__name",
            "clip__scene__name",
            "clip__scene__scenario__name",
            "likely",
            **{f: F(f"clip__{f}") for f in CLIP_FIELDS},
        )[:limit]  # fmt: skip
    )
    return [
        {
            "task": row["id"],
            "clip_name": row["clip__name"],
            "scene": row["clip__scene__name"],
            "scenario": row["clip__scene__scenario__name"],
            "likely": None if row["likely"] == UNKNOWN else row["likely"],
            "clip": ClipView(id=row["clip_id"], **{f: row[f] for f in CLIP_FIELDS}),
        }  # fmt: skip
        for row in rows
    ]


def gold_coverage(*, campaign: Campaign) -> dict:
    """Return the gold set's size against its target (``gold_share`` of the usable clips)."""
    totals = Task.objects.filter(campaign=campaign).aggregate(
        clips=Count("id", filter=~Q(clip__status=MediaStatus.FAILED)),
        gold=Count("id", filter=Q(is_gold=True) & ~Q(clip__status=MediaStatus.FAILED)),
    )
    totals["target"] = math.ceil(campaign.gold_share * totals["clips"])
    return totals
