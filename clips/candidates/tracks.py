"""Stage 3: link the face detections inside each shot into face tracks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clips.lazy import lazy_module

from .scan import Box, VideoScan, _clamp_box
from .shots import Shot

np = lazy_module("numpy")


@dataclass(frozen=True, slots=True)
class Track:
    """One face followed through consecutive frames of one shot.

    ``boxes`` has one box per frame from ``start_frame`` to ``end_frame`` (exclusive): detected
    boxes smoothed, interpolated between samples and held at the ends. ``hits`` counts the
    sampled frames where the detector saw the face, ``samples`` the sampled frames the track spans.
    The video geometry travels with the track so that clip planning needs nothing else.
    """

    track_id: int
    shot_index: int
    start_frame: int
    end_frame: int
    boxes: tuple[Box, ...]
    hits: int
    samples: int
    fps: float
    frame_width: int
    frame_height: int

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "shot_index": self.shot_index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "boxes": [box.to_list() for box in self.boxes],
            "hits": self.hits,
            "samples": self.samples,
            "fps": self.fps,
            "frame_width": self.frame_width,
            "frame_height": self.frame_height,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Track:
        return cls(
            track_id=int(data["track_id"]),
            shot_index=int(data["shot_index"]),
            start_frame=int(data["start_frame"]),
            end_frame=int(data["end_frame"]),
            boxes=tuple(Box.from_list(b) for b in data["boxes"]),
            hits=int(data["hits"]),
            samples=int(data["samples"]),
            fps=float(data["fps"]),
            frame_width=int(data["frame_width"]),
            frame_height=int(data["frame_height"]),
        )


# --------------------------------------------------------------------------------------------
# Stage 3: tracking


def _suppress_overlaps(boxes: list[Box], iou: float = 0.5) -> list[Box]:
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: -b.area):
        if all(box.iou(other) < iou for other in kept):
            kept.append(box)
    return kept


def _match(
    previous: list[tuple[Box, Box]], current: list[Box], iou_threshold: float, max_jump: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching by IoU, refusing low overlap and large centre jumps.

    Each open track offers two boxes: its last one and the one its recent motion predicts; a
    detection may continue the track if it is close enough to either.
    """
    pairs = []
    for i, guesses in enumerate(previous):
        for j, b in enumerate(current):
            best = 0.0
            for a in guesses:
                overlap = a.iou(b)
                (ax, ay), (bx, by) = a.center, b.center
                if overlap >= iou_threshold and math.hypot(ax - bx, ay - by) <= max_jump * max(
                    a.w, a.h
                ):
                    best = max(best, overlap)
            if best > 0:
                pairs.append((best, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_i: set[int] = set()
    used_j: set[int] = set()
    matches = []
    for _, i, j in pairs:
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            matches.append((i, j))
    return matches


@dataclass(slots=True)
class _OpenTrack:
    observations: list[tuple[int, Box]]
    missed: int = 0

    @property
    def last(self) -> Box:
        return self.observations[-1][1]

    def guesses(self, frame: int) -> tuple[Box, Box]:
        """The last box, and the last box moved on at the speed of the last two observations."""
        (f1, b1) = self.observations[-1]
        if len(self.observations) < 2:
            return (b1, b1)
        (f0, b0) = self.observations[-2]
        step = (frame - f1) / (f1 - f0)
        (x0, y0), (x1, y1) = b0.center, b1.center
        cx, cy = x1 + (x1 - x0) * step, y1 + (y1 - y0) * step
        return (b1, Box.from_list([cx - b1.w / 2, cy - b1.h / 2, b1.w, b1.h]))


def track_faces(
    scan: VideoScan,
    shots: Sequence[Shot],
    *,
    iou_threshold: float = 0.3,
    max_jump: float = 0.5,
    max_missed: int = 3,
    min_hits: int = 2,
) -> list[Track]:
    """Link the scan's detections into face tracks, never across a shot boundary.

    A detection continues the open track whose last box it overlaps most (IoU at least
    ``iou_threshold``, centre moved at most ``max_jump`` box sizes); a track closes after
    ``max_missed`` consecutive sampled frames without a match, and at the end of its shot. Tracks
    seen on fewer than ``min_hits`` sampled frames are dropped as detector noise.
    """
    sampled = sorted(scan.detections)
    tracks: list[Track] = []
    for shot in shots:
        frames = [f for f in sampled if shot.start_frame <= f < shot.end_frame]
        open_tracks: list[_OpenTrack] = []
        closed: list[_OpenTrack] = []
        for frame in frames:
            current = _suppress_overlaps(scan.detections[frame])
            guesses = [t.guesses(frame) for t in open_tracks]
            matches = _match(guesses, current, iou_threshold, max_jump)
            matched_tracks = {i for i, _ in matches}
            for i, j in matches:
                open_tracks[i].observations.append((frame, current[j]))
                open_tracks[i].missed = 0
            still_open = []
            for i, track in enumerate(open_tracks):
                if i not in matched_tracks:
                    track.missed += 1
                (closed if track.missed >= max_missed else still_open).append(track)
            matched_boxes = {j for _, j in matches}
            still_open.extend(
                _OpenTrack([(frame, box)])
                for j, box in enumerate(current)
                if j not in matched_boxes
            )
            open_tracks = still_open
        closed.extend(open_tracks)
        closed.sort(key=lambda t: (t.observations[0][0], t.observations[0][1].x))
        for track in closed:
            if len(track.observations) < min_hits:
                continue
            tracks.append(_finish_track(track, len(tracks), shot, frames, scan))
    return tracks


def _finish_track(
    track: _OpenTrack, track_id: int, shot: Shot, frames: list[int], scan: VideoScan
) -> Track:
    obs_frames = np.array([f for f, _ in track.observations], dtype=np.float64)
    # Centre and size of each observation, smoothed over neighbouring samples (Haar boxes jitter).
    raw = np.array(
        [[b.x + b.w / 2, b.y + b.h / 2, b.w, b.h] for _, b in track.observations], dtype=np.float64
    )
    smooth = raw.copy()
    if len(raw) >= 3:
        smooth[1:-1] = (raw[:-2] + 2 * raw[1:-1] + raw[2:]) / 4
    first, last = int(obs_frames[0]), int(obs_frames[-1])
    # Extend the ends: to the shot edge when no earlier/later sample exists in this shot, else half
    # way to the neighbouring sample where the face was not seen.
    before = [f for f in frames if f < first]
    after = [f for f in frames if f > last]
    start = first - (first - before[-1]) // 2 if before else shot.start_frame
    end = last + (after[0] - last) // 2 + 1 if after else shot.end_frame
    span = np.arange(start, end, dtype=np.float64)
    columns = [np.interp(span, obs_frames, smooth[:, k]) for k in range(4)]
    width, height = scan.info.width, scan.info.height
    boxes = tuple(
        _clamp_box(Box.from_list([cx - w / 2, cy - h / 2, w, h]), width, height)
        for cx, cy, w, h in zip(*columns, strict=True)
    )
    samples = sum(1 for f in frames if first <= f <= last)
    return Track(
        track_id=track_id,
        shot_index=shot.index,
        start_frame=start,
        end_frame=end,
        boxes=boxes,
        hits=len(track.observations),
        samples=samples,
        fps=scan.info.fps,
        frame_width=width,
        frame_height=height,
    )
