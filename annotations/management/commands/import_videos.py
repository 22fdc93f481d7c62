"""Import raw source videos into a campaign and run the candidate pipeline on each (resumable)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.intake import campaign_source_video_import
from annotations.management.arguments import campaign_argument
from clips.imports import ImportSourceError, import_items, resolve_input
from clips.models import MediaStatus
from clips.pipeline import check_params, source_video_retry
from clips.services import scene_lookup
from labelstudio_ferv.errors import Conflict, ValidationError


class Command(BaseCommand):
    help = (
        "Import raw videos into a campaign and cut them into candidate face clips. FOLDER holds "
        "<Scene>/<any path>/<video>; the scene comes from the first path component. A manifest "
        "CSV has the columns path,scene[,title] with paths relative to its own folder (or "
        "--root). Videos already imported are found by content and skipped; --retry-failed "
        "sends the failed ones back to the stage that failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign id or name")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--folder", type=Path)
        source.add_argument("--manifest", type=Path)
        parser.add_argument("--root", type=Path, help="folder manifest paths are relative to")
        parser.add_argument("--min-frames", type=int, help="shortest clip (default 8 frames)")
        parser.add_argument("--max-frames", type=int, help="longest clip (default 47 frames)")
        parser.add_argument("--margin", type=float, help="space around the face (default 0.25)")
        parser.add_argument("--sample-every", type=int, help="detect faces every n frames (3)")
        parser.add_argument("--retry-failed", action="store_true")

    def handle(self, *args, **options):
        campaign = campaign_argument(options["campaign"])
        params = {
            key: options[key]
            for key in ("min_frames", "max_frames", "margin", "sample_every")
            if options[key] is not None
        }
        try:
            check_params(params)
            root, items = import_items(
                folder=options["folder"],
                manifest=options["manifest"],
                root=options["root"],
                columns=("title",),
            )
        except ValidationError as exc:
            raise CommandError(exc.message)
        except ImportSourceError as exc:
            raise CommandError(exc.message)
        totals = {"imported": 0, "existing": 0, "rejected": 0, "retried": 0}
        scenes: dict[str, object] = {}
        for item in items:
            path, problem = resolve_input(root, item.rel)
            if item.scene not in scenes:
                scenes[item.scene] = scene_lookup(item.scene)
            if problem is None and not item.scene:
                problem = f"{item.rel}: not inside a scene folder (<Scene>/.../<video>)"
            elif problem is None and scenes[item.scene] is None:
                problem = f"{item.rel}: no scene named {item.scene!r}"
            if problem is not None:
                totals["rejected"] += 1
                self.stderr.write(f"rejected: {problem}")
                continue
            try:
                video, created = campaign_source_video_import(
                    campaign=campaign, path=path, scene=scenes[item.scene],
                    title=item.extra.get("title") or item.rel, params=params,
                )  # fmt: skip
            except (ValidationError, Conflict) as exc:
                totals["rejected"] += 1
                self.stderr.write(f"rejected: {exc.message}")
                continue
            totals["imported" if created else "existing"] += 1
            if not created and options["retry_failed"] and video.status == MediaStatus.FAILED:
                source_video_retry(video=video)
                totals["retried"] += 1
            if options["verbosity"] >= 2:
                video.refresh_from_db(fields=["status", "stage", "clips_found", "explanation"])
                self.stdout.write(
                    f"{item.rel}: video {video.pk}, {video.status} at {video.stage}, "
                    f"{video.clips_found if video.clips_found is not None else '?'} clips"
                    + (f" ({video.explanation})" if video.explanation else "")
                )
        self.stdout.write(
            f"{totals['imported']} imported, {totals['existing']} already there, "
            f"{totals['rejected']} rejected, {totals['retried']} retried"
        )
