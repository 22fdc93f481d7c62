"""Exports of a campaign: labels CSV, votes CSV and the FERV39k release archive.

Every writer streams: rows come from a server-side cursor in chunks and go straight to a
temporary file, so memory stays flat whatever the campaign's size. The finished file replaces
the stored one in one step, so a download never sees half a file. The job's life (claiming,
heartbeats, a worker dying mid-export) is described in REVIEW.md.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import random
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, When
from django.db.models.functions import Now
from django.utils import timezone

from clips import ffmpeg
from labelstudio_ferv import leases
from labelstudio_ferv.errors import PermissionDenied, ValidationError
from labelstudio_ferv.expressions import ANSWER_KEYS, CLASS_NAMES, N_ANSWERS
from labelstudio_ferv.media_urls import media_url
from labelstudio_ferv.queue import enqueue_on_commit

from . import audit_sample
from .models import Campaign, ConsensusStatus, ExportJob, Role, Task, Vote

logger = logging.getLogger(__name__)

CHUNK = 5000  # rows per server-side cursor fetch
# A running job whose heartbeat is older than the lease is taken to have lost its worker; a run
# saves its progress with every heartbeat (labelstudio_ferv.leases).
STALE_AFTER_S = leases.LEASE_S
FRAME_TIMEOUT_S = 120

DEFAULTS: dict[str, dict[str, Any]] = {
    ExportJob.Kind.LABELS: {"include_gold": False},
    ExportJob.Kind.VOTES: {"pseudonymise": True},
    ExportJob.Kind.RELEASE: {
        "test_share": 0.2,
        "seed": 0,
        "include_media": True,
        "include_gold": False,
    },
}

# --------------------------------------------------------------------------------------------
# Cells
# --------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def inert(value: str) -> str:
    """Return a text cell that spreadsheets show as text, never run as a formula.

    Excel, LibreOffice and Google Sheets evaluate a cell starting with = + - @ (and some treat
    a leading tab or carriage return the same way); a leading single quote makes it text.
    """
    return "'" + value if value.startswith(_FORMULA_START) else value


def _path_part(value: str) -> str:
    """Return a folder name safe in a release path: no separators, spaces or formula start."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value).strip(".") or "_"
    return "_" + cleaned if cleaned.startswith(_FORMULA_START) else cleaned


def pseudonym(*, campaign_id: int, user_id: int) -> str:
    """Return an annotator's stable pseudonym in a campaign (keyed, so it cannot be reversed
    by hashing every user id, and different in every campaign)."""
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, f"{campaign_id}:{user_id}".encode(), hashlib.sha256).hexdigest()
    return "a" + digest[:12]


def share_of(label: int | None, counts: list[int], votes: int) -> float:
    return round(counts[label] / votes, 4) if votes and label is not None else 0.0


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def check_params(*, kind: str, params: dict, role: str) -> dict:
    """Return the job's parameters with defaults filled in, or raise for a bad or forbidden one."""
    if kind not in ExportJob.Kind.values:
        raise ValidationError(f"Unknown export kind {kind!r}.")
    allowed = DEFAULTS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValidationError(f"Unknown parameter for a {kind} export: {', '.join(unknown)}.")
    merged = {**allowed, **params}
    for name, default in allowed.items():
        if isinstance(default, bool) and not isinstance(merged[name], bool):
            raise ValidationError(f"{name} must be true or false.")
    if kind == ExportJob.Kind.RELEASE:
        share = merged["test_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            raise ValidationError("test_share must be a number between 0 and 1.")
        seed = merged["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValidationError("seed must be a whole number, 0 or more.")
        merged["test_share"] = float(share)
    if kind == ExportJob.Kind.VOTES and not merged["pseudonymise"] and role != Role.ADMIN:
        raise PermissionDenied("Only a campaign admin may export annotators' usernames.")
    return merged


def export_create(
    *,
    campaign: Campaign,
    kind: str,
    params: dict,
    created_by: AbstractBaseUser | None,
    role: str,
    enqueue: bool = True,
) -> ExportJob:
    """Create an export job and have a worker run it once the transaction commits.

    With ``enqueue`` False no worker is asked: the caller runs the job itself with
    ``export_run`` (the ``export_campaign`` command, in its own process).
    """
    params = check_params(kind=kind, params=params, role=role)
    with transaction.atomic():
        job = ExportJob.objects.create(
            campaign=campaign, kind=kind, params=params, created_by=created_by
        )
        if not enqueue:
            return job

        def unavailable(job_id: int = job.pk) -> None:
            ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.PENDING).update(
                status=ExportJob.Status.FAILED,
                error="The task queue is unavailable; try again in a moment.",
                finished_at=timezone.now(),
            )

        enqueue_on_commit("annotations.run_export", job.pk, on_unavailable=unavailable)
    return job


class Superseded(Exception):
    """Another run took the job over (this one's worker was thought dead)."""


BUSY = "busy"


def export_run(*, job_id: int) -> ExportJob | str | None:
    """Run an export job to its end; return the job, None if gone, or BUSY.

    Idempotent: a job done or failed stays as it is. A job running with a fresh heartbeat
    belongs to a live run elsewhere (BUSY: the caller checks again later). Otherwise this run
    takes the job over (a lease: of two runs racing, one wins; each run bumps ``attempt``),
    writes the whole file from scratch and replaces the stored one.
    """
    job = ExportJob.objects.filter(pk=job_id).first()
    if job is None or job.status in (ExportJob.Status.DONE, ExportJob.Status.FAILED):
        return job
    lease = leases.claim(
        ExportJob,
        pk=job_id,
        free=Q(status=ExportJob.Status.PENDING),
        held=Q(status=ExportJob.Status.RUNNING),
        fields={"status": ExportJob.Status.RUNNING, "attempt": F("attempt") + 1, "rows_done": 0},
        keep=("status",),
    )
    if lease is None:
        return BUSY
    job.refresh_from_db()
    attempt = job.attempt
    progress = _Progress(lease=lease)
    name = stored_name(job)
    try:
        with _staged(name) as temp:
            write_export(job=job, path=temp, progress=progress)
            progress.check()
            stored = _store(temp, name)
        done = lease.update(
            status=ExportJob.Status.DONE,
            file=stored,
            rows_done=progress.rows,
            rows_total=progress.rows,
            finished_at=timezone.now(),
            heartbeat_at=Now(),
        )
        if not done:
            raise Superseded
    except Superseded:
        logger.info("export %s attempt %s was taken over by a later run", job_id, attempt)
        return BUSY
    except Exception as exc:
        logger.exception("export %s failed", job_id)
        lease.update(
            status=ExportJob.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


class _Progress:
    """Save rows done with the heartbeat now and then; stop when another run took the job."""

    def __init__(self, *, lease: leases.Lease):
        self.lease = lease
        self.rows = 0

    def total(self, rows_total: int) -> None:
        self._save(force=True, rows_total=rows_total)

    def add(self, rows: int = 1) -> None:
        self.rows += rows
        self._save()

    def check(self) -> None:
        self._save(force=True)

    def _save(self, *, force: bool = False, **extra: Any) -> None:
        try:
            self.lease.beat(force=force, rows_done=self.rows, **extra)
        except leases.LeaseLost:
            raise Superseded


def stored_name(job: ExportJob) -> str:
    """Return the job's file name in storage: fixed per job (so a re-run replaces it) and
    unguessable (media URLs need no login)."""
    key = settings.SECRET_KEY.encode()
    token = hmac.new(key, f"export:{job.pk}".encode(), hashlib.sha256).hexdigest()[:24]
    ext = "zip" if job.kind == ExportJob.Kind.RELEASE else "csv"
    return f"exports/campaign-{job.campaign_id}/{job.pk}-{token}/{job.kind}.{ext}"


def _local_path(name: str) -> Path | None:
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:  # a remote store (S3)
        return None


@contextlib.contextmanager
def _staged(name: str) -> Iterator[Path]:
    """Yield a temporary path next to the stored file (same file system: atomic rename)."""
    target = _local_path(name)
    folder = target.parent if target is not None else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    if target is not None:  # the job's own folder: leftovers of a run whose worker died
        for leftover in folder.glob(".export-*.part"):
            leftover.unlink(missing_ok=True)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".part")
    os.close(fd)
    try:
        yield Path(temp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _store(temp: Path, name: str) -> str:
    """Put the finished file in storage under ``name``, replacing an earlier one at once."""
    target = _local_path(name)
    if target is not None:
        os.chmod(temp, 0o644)
        os.replace(temp, target)
        return name
    if default_storage.exists(name):
        default_storage.delete(name)
    with temp.open("rb") as fh:
        return default_storage.save(name, File(fh))


def write_export(*, job: ExportJob, path: Path, progress: Any) -> None:
    """Write the job's file to ``path``."""
    campaign = Campaign.objects.get(pk=job.campaign_id)
    if job.kind == ExportJob.Kind.LABELS:
        with path.open("w", newline="", encoding="utf-8") as out:
            write_labels(campaign=campaign, out=out, progress=progress, **job.params)
    elif job.kind == ExportJob.Kind.VOTES:
        with path.open("w", newline="", encoding="utf-8") as out:
            write_votes(campaign=campaign, out=out, progress=progress, **job.params)
    else:
        write_release(campaign=campaign, path=path, progress=progress, **job.params)


class NoProgress:
    """A progress sink for callers that need none (benchmarks, scripts)."""

    rows = 0

    def total(self, rows_total: int) -> None:
        pass

    def add(self, rows: int = 1) -> None:
        self.rows += rows

    def check(self) -> None:
        pass


# --------------------------------------------------------------------------------------------
# Labels CSV
# --------------------------------------------------------------------------------------------

LABEL_COLUMNS = [
    "clip_id", "path", "name", "scenario", "scene", "label", "label_index", "how", "agreement",
    *ANSWER_KEYS, "votes",
]  # fmt: skip


def _labelled(campaign: Campaign, *, include_gold: bool) -> QuerySet[Task]:
    """Return the campaign's tasks with a final label, annotated with it as ``final``."""
    final = Q(is_gold=False, status__in=[ConsensusStatus.TRUSTED, ConsensusStatus.ADJUDICATED])
    if include_gold:
        final |= Q(is_gold=True)
    return Task.objects.filter(final, campaign=campaign).annotate(
        final=Case(When(is_gold=True, then=F("gold_label")), default=F("label"))
    )


def write_labels(
    *, campaign: Campaign, out: IO[str], progress: Any, include_gold: bool = False
) -> int:
    """Write one row per clip with a final label, ordered by clip id; return the row count.

    ``how`` is adjudicated (a reviewer's label), unanimous (every valid vote is the label),
    the campaign's aggregation (majority, dawid_skene or confidence) or gold (a reference label,
    only with ``include_gold``). ``agreement`` is the share of valid votes for the final label.
    """
    tasks = _labelled(campaign, include_gold=include_gold)
    progress.total(tasks.count())
    rows = tasks.order_by("clip_id").values_list(
        "clip_id", "clip__video", "clip__name", "clip__scene__scenario__name",
        "clip__scene__folder", "status", "final", "is_gold", "counts", "vote_count",
    )  # fmt: skip
    plural = campaign.aggregation  # majority, dawid_skene or confidence
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    n = 0
    for clip_id, video, name, scenario, scene, status, label, gold, counts, votes in rows.iterator(
        chunk_size=CHUNK
    ):
        if gold:
            how = "gold"
        elif status == ConsensusStatus.ADJUDICATED:
            how = "adjudicated"
        elif votes and counts[label] == votes:
            how = "unanimous"
        else:
            how = plural
        writer.writerow(
            [
                clip_id, inert(video), inert(name), inert(scenario), inert(scene),
                CLASS_NAMES[label], label, how, share_of(label, counts, votes),
                *counts[:N_ANSWERS], votes,
            ]
        )  # fmt: skip
        n += 1
        progress.add()
    return n


# --------------------------------------------------------------------------------------------
# Votes CSV
# --------------------------------------------------------------------------------------------

VOTE_COLUMNS = [
    "vote_id", "clip_id", "annotator", "answer", "answer_index", "valid", "time_ms", "batch",
    "created_at",
]  # fmt: skip


def write_votes(
    *, campaign: Campaign, out: IO[str], progress: Any, pseudonymise: bool = True
) -> int:
    """Write one row per vote (invalidated ones too, marked), ordered by vote id."""
    votes = Vote.objects.filter(campaign=campaign)
    progress.total(votes.count())
    rows = votes.order_by("pk").values_list(
        "pk", "task__clip_id", "annotator_id", "annotator__username", "answer", "is_valid",
        "time_ms", "batch_id", "created_at",
    )  # fmt: skip
    names: dict[int, str] = {}
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VOTE_COLUMNS)
    n = 0
    for (
        vote_id,
        clip_id,
        user_id,
        username,
        answer,
        valid,
        time_ms,
        batch,
        created,
    ) in rows.iterator(chunk_size=CHUNK):
        name = names.get(user_id)
        if name is None:
            name = names[user_id] = (
                pseudonym(campaign_id=campaign.pk, user_id=user_id)
                if pseudonymise
                else inert(username)
            )
        writer.writerow(
            [
                vote_id, clip_id, name, ANSWER_KEYS[answer], answer, int(valid),
                "" if time_ms is None else time_ms, "" if batch is None else batch,
                created.isoformat(),
            ]
        )  # fmt: skip
        n += 1
        progress.add()
    return n


# --------------------------------------------------------------------------------------------
# FERV39k release
# --------------------------------------------------------------------------------------------


def test_count(n: int, share: float) -> int:
    """Return how many of a cell's n clips go to test: the nearest whole number to n * share."""
    return math.floor(n * share + 0.5)


def split_cell(*, n: int, share: float, seed: int, scene: str, label: int) -> set[int]:
    """Return the positions (0..n-1) of a cell's clips that go to test.

    Seeded per cell, so a cell's split depends only on the seed and its own clips.
    """
    rng = random.Random(f"{seed}/{scene}/{label}")
    return set(rng.sample(range(n), test_count(n, share)))


def write_release(
    *,
    campaign: Campaign,
    path: Path,
    progress: Any,
    test_share: float = 0.2,
    seed: int = 0,
    include_media: bool = True,
    include_gold: bool = False,
) -> tuple[int, int]:
    """Write the release archive: train_All.csv, test_All.csv and (with media) each clip's
    frames under ``Scene/Emotion/0001/``; return (train, test) line counts.

    Lines are ``Scene/Emotion/0001 Emotion`` without a header. Within each scene x class cell,
    clips are numbered from 0001 by clip id and the test share is drawn per cell.
    """
    tasks = _labelled(campaign, include_gold=include_gold)
    progress.total(tasks.count())
    rows = tasks.order_by("clip__scene__position", "final", "clip_id").values_list(
        "clip__scene__folder", "final", "clip_id", "clip__video"
    )
    counts = [0, 0]
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="release-")))
        train = stack.enter_context((work / "train_All.csv").open("w", encoding="utf-8"))
        test = stack.enter_context((work / "test_All.csv").open("w", encoding="utf-8"))
        archive = stack.enter_context(
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        )
        for (folder, label), cell in itertools.groupby(
            rows.iterator(chunk_size=CHUNK), key=lambda r: (r[0], r[1])
        ):
            clips = [(clip_id, video) for _, _, clip_id, video in cell]
            scene = _path_part(folder)
            emotion = CLASS_NAMES[label]
            chosen = split_cell(n=len(clips), share=test_share, seed=seed, scene=scene, label=label)
            for i, (clip_id, video) in enumerate(clips):
                rel = f"{scene}/{emotion}/{i + 1:04d}"
                if include_media:
                    _add_frames(archive, clip_id=clip_id, video=video, folder=rel, work=work)
                is_test = i in chosen
                (test if is_test else train).write(f"{rel} {emotion}\n")
                counts[is_test] += 1
                progress.add()
        train.close()
        test.close()
        for name in ("train_All.csv", "test_All.csv"):
            archive.write(work / name, arcname=name)
        # The blind audit's measured precision, beside the split files.
        audit = audit_sample.audit_precision(campaign_id=campaign.pk)
        archive.writestr("audit_precision.json", json.dumps(audit, indent=2))
    return counts[0], counts[1]


def _add_frames(
    archive: zipfile.ZipFile, *, clip_id: int, video: str, folder: str, work: Path
) -> None:
    """Extract a clip's frames as JPEGs (from its browser MP4) into the archive."""
    if not video:
        raise RuntimeError(f"Clip {clip_id} has no playable video; its frames cannot be exported.")
    frames = work / "frames"
    shutil.rmtree(frames, ignore_errors=True)
    frames.mkdir()
    source = _local_path(video)
    if source is None:  # a remote store: fetch the (small) clip first
        source = work / "clip.mp4"
        with default_storage.open(video, "rb") as src, source.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    cmd = [
        ffmpeg.ffmpeg_binary(), "-v", "error", "-nostdin", "-i", str(source), "-q:v", "2",
        "-start_number", "1", str(frames / "%05d.jpg"),
    ]  # fmt: skip
    done = ffmpeg.run(cmd, FRAME_TIMEOUT_S)
    if done.returncode != 0:
        reason = ffmpeg.failure_reason(done.stderr)
        raise RuntimeError(f"Clip {clip_id}: ffmpeg could not read its video: {reason}")
    for frame in sorted(frames.iterdir()):
        archive.write(frame, arcname=f"{folder}/{frame.name}", compress_type=zipfile.ZIP_STORED)


def export_file_url(job: ExportJob, *, role: str, user: AbstractBaseUser) -> str | None:
    """Return the job's download URL for ``user``, a member with ``role``, or None.

    A votes export with usernames is for admins only, like asking for one.
    """
    if job.status != ExportJob.Status.DONE or not job.file:
        return None
    named = job.kind == ExportJob.Kind.VOTES and not job.params.get("pseudonymise", True)
    if named and role != Role.ADMIN:
        return None
    return media_url(job.file.name, user=user, download=True)
