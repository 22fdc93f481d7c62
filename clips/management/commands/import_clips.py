"""Import thousands of clips into a campaign from a folder or a manifest CSV (resumable)."""

from __future__ import annotations

import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.management.arguments import campaign_argument
from clips.services import campaign_ingest, scene_lookup

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}


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
        if options["folder"]:
            root = options["folder"].resolve()
            if not root.is_dir():
                raise CommandError(f"{root} is not a folder")
            items = [(rel, rel.split("/", 1)[0], {}) for rel in self._walk(root)]
        else:
            manifest = options["manifest"].resolve()
            if not manifest.is_file():
                raise CommandError(f"{manifest} does not exist")
            root = (options["root"] or manifest.parent).resolve()
            items = self._read_manifest(manifest)
        totals = {"created": 0, "existing": 0, "rejected": 0}
        rejected: list[str] = []
        scenes: dict[str, object] = {}
        bar = tqdm(total=len(items), unit="clip", disable=None, file=self.stderr._out)
        for start in range(0, len(items), options["batch"]):
            chunk = []
            for rel, scene_name, extra in items[start : start + options["batch"]]:
                path = (root / rel).resolve()
                if not path.is_relative_to(root):
                    totals["rejected"] += 1
                    rejected.append(f"{rel}: path leaves the import folder {root}")
                    continue
                if not path.exists():
                    totals["rejected"] += 1
                    rejected.append(f"{rel}: no such file or folder")
                    continue
                if scene_name not in scenes:
                    scenes[scene_name] = scene_lookup(scene_name)
                chunk.append((rel, scenes[scene_name], path, extra))
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

    def _walk(self, root: Path) -> list[str]:
        """Return clip inputs below root: folders that hold frames, and every other file."""
        paths = sorted(p for p in root.rglob("*") if not p.name.startswith("."))
        frame_dirs = {p.parent for p in paths if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES}
        found = [p.relative_to(root).as_posix() for p in sorted(frame_dirs)]
        for path in paths:
            # Files inside a frame folder belong to it; anything else is offered for import and
            # rejected with a reason when it is not a video.
            if path.is_file() and path.parent not in frame_dirs:
                found.append(path.relative_to(root).as_posix())
        return found

    def _read_manifest(self, manifest: Path) -> list[tuple[str, str, dict]]:
        with manifest.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"path", "scene"} - set(reader.fieldnames or [])
            if missing:
                raise CommandError(f"manifest lacks the column(s): {', '.join(sorted(missing))}")
            rows = []
            for line, row in enumerate(reader, start=2):
                extra = {}
                try:
                    for key in ("start_s", "end_s"):
                        if (row.get(key) or "").strip():
                            extra[key] = float(row[key])
                except ValueError:
                    raise CommandError(f"manifest line {line}: start_s and end_s must be numbers")
                if (row.get("source_video") or "").strip():
                    extra["source_video"] = row["source_video"].strip()
                rows.append((row["path"].strip(), row["scene"].strip(), extra))
            return rows
