"""What a folder or a manifest CSV offers for import: the one walk, manifest reader and path check.

Used by the ``import_clips`` and ``import_videos`` commands. A folder holds
``<Scene>/<any path>/<input>``: the scene is the first path component. A manifest CSV has the
columns ``path,scene`` and optional ones, with paths relative to its own folder (or ``root``).
Hidden files and folders (a name starting with ".") are never offered.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}
# Optional manifest columns read as numbers.
_NUMBERS = ("start_s", "end_s")


class ImportSourceError(Exception):
    """The folder or manifest itself cannot be read (not one of its inputs)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImportItem:
    """One input offered: its path relative to the root, its scene name and manifest extras."""

    rel: str
    scene: str
    extra: dict = field(default_factory=dict)


def import_items(
    *,
    folder: Path | None = None,
    manifest: Path | None = None,
    root: Path | None = None,
    frame_folders: bool = False,
    columns: tuple[str, ...] = (),
) -> tuple[Path, list[ImportItem]]:
    """Return the root inputs are relative to, and the inputs offered by a folder or a manifest.

    With ``frame_folders`` a folder that holds image files is one input (a clip as frames)
    instead of one input per image. ``columns`` names the optional manifest columns to keep
    (``start_s`` and ``end_s`` are read as numbers). Raise ImportSourceError for a folder or
    manifest that is not there or lacks a column.
    """
    if folder is not None:
        base = folder.resolve()
        if not base.is_dir():
            raise ImportSourceError(f"{base} is not a folder")
        return base, [ImportItem(rel, _scene_of(rel)) for rel in _walk(base, frame_folders)]
    assert manifest is not None
    manifest = manifest.resolve()
    if not manifest.is_file():
        raise ImportSourceError(f"{manifest} does not exist")
    base = (root or manifest.parent).resolve()
    return base, _read_manifest(manifest, columns)


def resolve_input(root: Path, rel: str, *, folders: bool = False) -> tuple[Path, str | None]:
    """Return the absolute path of an input and what is wrong with it (None when nothing).

    An input may not leave the root (``../``, absolute paths, symbolic links out of it); it must
    exist, as a file (or a folder too, with ``folders``).
    """
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        return path, f"{rel}: path leaves the import folder {root}"
    if folders and not path.exists():
        return path, f"{rel}: no such file or folder"
    if not folders and not path.is_file():
        return path, f"{rel}: no such file"
    return path, None


def _scene_of(rel: str) -> str:
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else ""


def _walk(root: Path, frame_folders: bool) -> list[str]:
    paths = [
        p
        for p in sorted(root.rglob("*"))
        if not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    files = [p for p in paths if p.is_file()]
    if not frame_folders:
        return [p.relative_to(root).as_posix() for p in files]
    frame_dirs = {p.parent for p in files if p.suffix.lower() in FRAME_SUFFIXES}
    found = [p.relative_to(root).as_posix() for p in sorted(frame_dirs)]
    # Files inside a frame folder belong to it; anything else is offered for import and
    # rejected with a reason when it is not a video.
    found += [p.relative_to(root).as_posix() for p in files if p.parent not in frame_dirs]
    return found


def _read_manifest(manifest: Path, columns: tuple[str, ...]) -> list[ImportItem]:
    with manifest.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"path", "scene"} - set(reader.fieldnames or [])
        if missing:
            raise ImportSourceError(f"manifest lacks the column(s): {', '.join(sorted(missing))}")
        items = []
        for line, row in enumerate(reader, start=2):
            extra: dict = {}
            for key in columns:
                value = (row.get(key) or "").strip()
                if not value:
                    continue
                if key in _NUMBERS:
                    try:
                        extra[key] = float(value)
                    except ValueError:
                        raise ImportSourceError(
                            f"manifest line {line}: {' and '.join(_NUMBERS)} must be numbers"
                        )
                else:
                    extra[key] = value
            items.append(ImportItem(row["path"].strip(), row["scene"].strip(), extra))
        return items
