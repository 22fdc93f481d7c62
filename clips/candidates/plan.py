"""Stage 4: 8..47-frame pieces of face tracks with a square crop; why a video gave none."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clips.lazy import lazy_module

from .scan import Box, VideoScan
from .shots import Shot
from .tracks import Track

np = lazy_module("numpy")


@dataclass(frozen=True, slots=True)
class CandidateClip:
    """A clip to cut: a frame span of one track and one square crop for all of its frames."""

    track_id: int
    piece: int  # 0-based index of this piece among the pieces of its track
    shot_index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    crop: Box  # square, inside the frame
    boxes: tuple[Box, ...]  # the face box in every frame, source pixels
    out_size: int = 224

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def key(self) -> str:
        """A name unique within one video, stable across re-runs with the same parameters."""
        return f"f{self.start_frame:07d}-t{self.track_id:04d}-p{self.piece}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "piece": self.piece,
            "shot_index": self.shot_index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "crop": self.crop.to_list(),
            "boxes": [box.to_list() for box in self.boxes],
            "out_size": self.out_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateClip:
        return cls(
            track_id=int(data["track_id"]),
            piece=int(data["piece"]),
            shot_index=int(data["shot_index"]),
            start_frame=int(data["start_frame"]),
            end_frame=int(data["end_frame"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            crop=Box.from_list(data["crop"]),
            boxes=tuple(Box.from_list(b) for b in data["boxes"]),
            out_size=int(data.get("out_size", 224)),
        )


# --------------------------------------------------------------------------------------------
# Stage 4: clip planning


def split_span(length: int, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Cut ``length`` frames into near-equal consecutive pieces of ``min_frames..max_frames``.

    Returns ``(offset, size)`` pairs; none when ``length < min_frames``. When no even split fits
    (only possible if ``max_frames < 2 * min_frames - 1``), whole pieces of ``max_frames`` are
    taken from the middle and the rest is dropped.
    """
    if min_frames < 1 or max_frames < min_frames:
        raise ValueError("need 1 <= min_frames <= max_frames")
    if length < min_frames:
        return []
    pieces = math.ceil(length / max_frames)
    if length // pieces < min_frames:
        pieces = length // max_frames
        skip = (length - pieces * max_frames) // 2
        return [(skip + k * max_frames, max_frames) for k in range(pieces)]
    base, extra = divmod(length, pieces)
    out, offset = [], 0
    for k in range(pieces):
        size = base + (1 if k < extra else 0)
        out.append((offset, size))
        offset += size
    return out


def crop_for_boxes(boxes: Sequence[Box], margin: float, width: int, height: int) -> Box:
    """One square around every box: their union plus ``margin`` face sizes on each side.

    The face size is the median of the boxes' larger sides. The square is shifted, and if need
    be shrunk, to lie inside the ``width`` x ``height`` frame.
    """
    x1 = min(b.x for b in boxes)
    y1 = min(b.y for b in boxes)
    x2 = max(b.x2 for b in boxes)
    y2 = max(b.y2 for b in boxes)
    face = float(np.median([max(b.w, b.h) for b in boxes]))
    side = math.ceil(max(x2 - x1, y2 - y1) + 2 * margin * face)
    side = max(2, min(side, width, height))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    x = min(max(0, int(math.floor(cx - side / 2))), width - side)
    y = min(max(0, int(math.floor(cy - side / 2))), height - side)
    return Box(x, y, side, side)


def plan_clips(
    tracks: Sequence[Track],
    *,
    min_frames: int = 8,
    max_frames: int = 47,
    margin: float = 0.25,
    out_size: int = 224,
) -> list[CandidateClip]:
    """Turn face tracks into candidate clips of ``min_frames..max_frames`` frames.

    Shorter tracks are dropped; longer ones are split evenly. Each clip gets one square crop
    around all of its face boxes (see ``crop_for_boxes``), to be scaled to ``out_size``.
    """
    clips: list[CandidateClip] = []
    for track in tracks:
        for piece, (offset, size) in enumerate(
            split_span(track.frame_count, min_frames, max_frames)
        ):
            boxes = track.boxes[offset : offset + size]
            start = track.start_frame + offset
            clips.append(
                CandidateClip(
                    track_id=track.track_id,
                    piece=piece,
                    shot_index=track.shot_index,
                    start_frame=start,
                    end_frame=start + size,
                    start_s=round(start / track.fps, 6),
                    end_s=round((start + size) / track.fps, 6),
                    crop=crop_for_boxes(boxes, margin, track.frame_width, track.frame_height),
                    boxes=boxes,
                    out_size=out_size,
                )
            )
    clips.sort(key=lambda c: (c.start_frame, c.track_id, c.piece))
    return clips


def explain(
    scan: VideoScan,
    shots: Sequence[Shot],
    tracks: Sequence[Track],
    candidates: Sequence[CandidateClip],
    *,
    min_frames: int = 8,
) -> str | None:
    """Say in plain words why a video gave no candidate (``None`` when it gave some)."""
    if candidates:
        return None
    if scan.frame_count == 0:
        return "no frames could be decoded"
    n = len(shots)
    in_shots = f"{n} shot{'s' if n != 1 else ''}"
    shots_with_faces = {
        s.index
        for s in shots
        if any(s.start_frame <= f < s.end_frame and b for f, b in scan.detections.items())
    }
    if not shots_with_faces:
        return f"no face found in {in_shots}"
    if not tracks:
        return (
            f"faces were detected in {len(shots_with_faces)} of {in_shots}, "
            "but never on enough consecutive sampled frames to form a track"
        )
    longest = max(t.frame_count for t in tracks)
    return (
        f"{len(tracks)} face track{'s' if len(tracks) != 1 else ''} in {in_shots}, "
        f"but the longest has {longest} frames (clips need at least {min_frames})"
    )
