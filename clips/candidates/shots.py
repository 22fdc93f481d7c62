"""Stage 2: hard cuts from the cut scores of a scan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clips.lazy import lazy_module

from .scan import VideoScan

np = lazy_module("numpy")

# Cut scores are mean absolute grey-level differences (0..1) between consecutive frames reduced to
# about 64 px wide, which averages away noise and fine motion.
DEFAULT_CUT_THRESHOLD = 0.06
DEFAULT_CUT_RATIO = 2.5
DEFAULT_CUT_WINDOW = 8
DEFAULT_MIN_SHOT_FRAMES = 5


@dataclass(frozen=True, slots=True)
class Shot:
    """A run of frames between two hard cuts; ``end_frame`` is exclusive."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    cut_score: float = 0.0  # score of the cut that starts this shot (0 for the first shot)

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "cut_score": self.cut_score,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shot:
        return cls(
            index=int(data["index"]),
            start_frame=int(data["start_frame"]),
            end_frame=int(data["end_frame"]),
            start_s=float(data["start_s"]),
            end_s=float(data["end_s"]),
            cut_score=float(data.get("cut_score", 0.0)),
        )


# --------------------------------------------------------------------------------------------
# Stage 2: shots


def shots_from_scores(
    scores: Sequence[float],
    fps: float,
    *,
    threshold: float = DEFAULT_CUT_THRESHOLD,
    ratio: float = DEFAULT_CUT_RATIO,
    window: int = DEFAULT_CUT_WINDOW,
    min_shot_frames: int = DEFAULT_MIN_SHOT_FRAMES,
) -> list[Shot]:
    """Split ``len(scores)`` frames into shots at hard cuts.

    Frame ``i`` starts a new shot when its score is at least ``threshold`` and at least ``ratio``
    times the median score of the ``window`` frames on either side (so steady fast motion is not
    a cut, and a short flash is one cut at most). Competing cuts closer than ``min_shot_frames`` to
    each other or to either end of the video are resolved in favour of the strongest.
    """
    values = np.asarray(scores, dtype=np.float64)
    n = len(values)
    if n == 0:
        return []
    cuts: list[int] = []
    for i in np.flatnonzero(values >= threshold):
        i = int(i)
        if i == 0:
            continue
        neighbours = np.concatenate(
            [values[max(1, i - window) : i], values[i + 1 : i + 1 + window]]
        )
        base = float(np.median(neighbours)) if neighbours.size else 0.0
        if values[i] >= ratio * base:
            cuts.append(i)
    kept: list[int] = []
    for i in sorted(cuts, key=lambda c: (-values[c], c)):
        if i < min_shot_frames or n - i < min_shot_frames:
            continue
        if all(abs(i - k) >= min_shot_frames for k in kept):
            kept.append(i)
    bounds = [0, *sorted(kept), n]
    return [
        Shot(
            index=k,
            start_frame=start,
            end_frame=end,
            start_s=round(start / fps, 6),
            end_s=round(end / fps, 6),
            cut_score=float(values[start]) if start else 0.0,
        )
        for k, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def shots_from_scan(scan: VideoScan, **kwargs: Any) -> list[Shot]:
    """``shots_from_scores`` on a scan's scores and frame rate."""
    return shots_from_scores(scan.cut_scores, scan.info.fps, **kwargs)
