"""Import thousands of clips into a campaign from a folder or a manifest CSV (resumable)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.intake import campaign_ingest
from annotations.management.arguments import campaign_argument
from clips.imports import ImportSourceError, import_items, resolve_input
from clips.services import scene_lookup


class Command(BaseCommand):
    help = (
        "Import clips into a campaign. FOLDER holds video files or release-style frame folders "
        "(<Scene>/<Emotion>/<id>/*.jpg); the scene comes from the first path component. A "
        "manifest CSV has the columns path,scene[,source_video,start_s,end_s] with paths "
        "relative to its own folder (or --root). Running it again imports nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign id or name")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--folder", type=Path)
        source.add_argument("--manifest", type=Path)
        parser.add_argument("--root", type=Path, help="folder manifest paths are relative to")
        parser.add_argument(
            "--reference-labels",
            action="store_true",
            help="keep the expression named in release-style paths as a reference label "
            "(never shown to annotators; off by default)",
        )
        parser.add_argument("--batch", type=int, default=200, help="inputs per transaction")

    def handle(self, *args, **options):
        campaign = campaign_argument(options["campaign"])
        try:
            root, items = import_items(
                folder=options["folder"],
                manifest=options["manifest"],
                root=options["root"],
                frame_folders=True,
                columns=("source_video", "start_s", "end_s"),
            )
        except ImportSourceError as exc:
            raise CommandError(exc.message)
        totals = {"created": 0, "existing": 0, "rejected": 0}
        rejected: list[str] = []
        scenes: dict[str, object] = {}
        bar = tqdm(total=len(items), unit="clip", disable=None, file=self.stderr._out)
        for start in range(0, len(items), options["batch"]):
            chunk = []
            for item in items[start : start + options["batch"]]:
                path, problem = resolve_input(root, item.rel, folders=True)
                if problem is not None:
                    totals["rejected"] += 1
                    rejected.append(problem)
                    continue
                if item.scene not in scenes:
                    scenes[item.scene] = scene_lookup(item.scene)
                chunk.append((item.rel, scenes[item.scene], path, item.extra))
            results = campaign_ingest(
                campaign=campaign, items=chunk, reference_labels=options["reference_labels"]
            )
            for result in results:
                totals[result.status] += 1
                if result.status == "rejected":
                    rejected.append(result.message)
            bar.update(min(options["batch"], len(items) - start))
        bar.close()
        for message in rejected:
            self.stderr.write(f"rejected: {message}")
        self.stdout.write(
            f"{totals['created']} imported, {totals['existing']} already there, "
            f"{totals['rejected']} rejected"
        )
