"""Cut raw videos into candidate face clips: shots, face detection, tracking, clip planning.

This is step 2 of building a FERV39k-style data set (see CANDIDATES.md beside this file). The
module imports no Django: the Celery wiring calls the stages one by one and stores each stage's
``to_dict()`` output as JSON, so a video that failed at one stage can be retried from it.

Stages (each a plain function; the output of one is the input of the next):

1. ``scan_video`` -> ``VideoScan``: the only stage that decodes video. One ffmpeg run writes
   downscaled frames into a pipe; every frame gets a cut score, and every ``sample_every``-th
   frame goes through the face detector.
2. ``shots_from_scan`` -> ``list[Shot]``: hard cuts from the cut scores.
3. ``track_faces`` -> ``list[Track]``: links the detections inside each shot into face tracks.
4. ``plan_clips`` -> ``list[CandidateClip]``: 8..47-frame pieces of tracks with a square crop.
5. ``cut_clip``: writes one candidate as a 224x224 H.264 MP4; ``cut_clips`` writes many of them
   with one decode per run of nearby candidates.

``generate_candidates`` runs stages 1-4; ``detect_shots`` runs stages 1-2 without face detection.

All frame numbers count decoded frames from 0 (end frames are exclusive) and all boxes are
``[x, y, w, h]`` in pixels of the source video as ffmpeg decodes it (after autorotation). Times
are ``frame / fps``: sources are assumed to have a constant frame rate.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import ffmpeg as ff

StrPath = str | os.PathLike[str]


# Width of the frames the analysis stage decodes (never upscaled). Haar finds faces down to about
# 24 px here, i.e. about 50 px in a 640-wide source: smaller faces make useless 224 px crops.
DEFAULT_ANALYSIS_WIDTH = 320
DEFAULT_SAMPLE_EVERY = 3
# Cut scores are mean absolute grey-level differences (0..1) between consecutive frames reduced to
# about 64 px wide, which averages away noise and fine motion.
DEFAULT_CUT_THRESHOLD = 0.06
DEFAULT_CUT_RATIO = 2.5
DEFAULT_CUT_WINDOW = 8
DEFAULT_MIN_SHOT_FRAMES = 5
_CUT_SCORE_WIDTH = 64
_CHUNK_FRAMES = 32


class CandidateError(Exception):
    """A video could not be analysed or cut; ``reason`` is plain words that can be shown."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in pixels: top-left corner, width and height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)

    def iou(self, other: Box) -> float:
        ix = min(self.x2, other.x2) - max(self.x, other.x)
        iy = min(self.y2, other.y2) - max(self.y, other.y)
        if ix <= 0 or iy <= 0:
            return 0.0
        inter = ix * iy
        return inter / (self.area + other.area - inter)

    def contains(self, other: Box) -> bool:
        return (
            self.x <= other.x and self.y <= other.y and other.x2 <= self.x2 and other.y2 <= self.y2
        )

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> Box:
        x, y, w, h = values
        return cls(int(round(x)), int(round(y)), int(round(w)), int(round(h)))


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What ffprobe says about the video stream (display size, after rotation)."""

    width: int
    height: int
    fps: float

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "height": self.height, "fps": self.fps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoInfo:
        return cls(width=int(data["width"]), height=int(data["height"]), fps=float(data["fps"]))


@dataclass(slots=True)
class VideoScan:
    """Output of the decoding stage: everything later stages need, without the frames.

    ``cut_scores[i]`` compares frame ``i`` with frame ``i - 1`` (``cut_scores[0]`` is 0).
    ``detections`` maps every sampled frame, including those where nothing was found, to the
    boxes found there in source pixels.
    """

    info: VideoInfo
    frame_count: int
    sample_every: int
    analysis_width: int
    cut_scores: list[float]
    detections: dict[int, list[Box]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.info.fps

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": self.info.to_dict(),
            "frame_count": self.frame_count,
            "sample_every": self.sample_every,
            "analysis_width": self.analysis_width,
            "cut_scores": list(self.cut_scores),
            "detections": [
                [frame, [box.to_list() for box in boxes]]
                for frame, boxes in sorted(self.detections.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoScan:
        return cls(
            info=VideoInfo.from_dict(data["info"]),
            frame_count=int(data["frame_count"]),
            sample_every=int(data["sample_every"]),
            analysis_width=int(data["analysis_width"]),
            cut_scores=[float(v) for v in data["cut_scores"]],
            detections={
                int(frame): [Box.from_list(b) for b in boxes] for frame, boxes in data["detections"]
            },
        )


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


@dataclass(slots=True)
class GenerationResult:
    """Everything stages 1-4 produced for one video, plus why there is nothing when so."""

    scan: VideoScan
    shots: list[Shot]
    tracks: list[Track]
    candidates: list[CandidateClip]
    explanation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> VideoInfo:
        return self.scan.info

    def to_dict(self, *, include_scan: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "info": self.scan.info.to_dict(),
            "frame_count": self.scan.frame_count,
            "shots": [s.to_dict() for s in self.shots],
            "tracks": [t.to_dict() for t in self.tracks],
            "candidates": [c.to_dict() for c in self.candidates],
            "explanation": self.explanation,
            "params": dict(self.params),
        }
        if include_scan:
            data["scan"] = self.scan.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationResult:
        """Rebuild a result; without a stored scan, one without scores or detections stands in."""
        if "scan" in data:
            scan = VideoScan.from_dict(data["scan"])
        else:
            scan = VideoScan(
                info=VideoInfo.from_dict(data["info"]),
                frame_count=int(data["frame_count"]),
                sample_every=int(data.get("params", {}).get("sample_every", 1)),
                analysis_width=0,
                cut_scores=[],
            )
        return cls(
            scan=scan,
            shots=[Shot.from_dict(s) for s in data["shots"]],
            tracks=[Track.from_dict(t) for t in data["tracks"]],
            candidates=[CandidateClip.from_dict(c) for c in data["candidates"]],
            explanation=data.get("explanation"),
            params=dict(data.get("params", {})),
        )


# --------------------------------------------------------------------------------------------
# Face detectors


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in one frame.

    ``frame`` is a uint8 array, ``(h, w)`` grey or ``(h, w, 3)`` BGR; boxes are returned in that
    frame's pixels. The scanner hands over grey frames unless the detector has an attribute
    ``wants_color = True``.
    """

    def detect(self, frame: np.ndarray) -> list[Box]: ...


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade, which ships inside opencv-python-headless.

    ``min_size`` is in pixels of the frame given to ``detect``. The cascade is loaded on first use,
    so constructing a detector never fails; a missing OpenCV raises ``CandidateError`` then.
    """

    wants_color = False

    def __init__(
        self,
        *,
        cascade_path: StrPath | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
        equalize: bool = False,
    ) -> None:
        self.cascade_path = cascade_path
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.equalize = equalize
        self._cv2: Any = None
        self._cascade: Any = None

    def _load(self) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise CandidateError(f"OpenCV is not installed ({exc})") from exc
        path = self.cascade_path or cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise CandidateError(f"cannot load the face cascade {path}")
        self._cv2, self._cascade = cv2, cascade

    def detect(self, frame: np.ndarray) -> list[Box]:
        if self._cascade is None:
            self._load()
        cv2 = self._cv2
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


# --------------------------------------------------------------------------------------------
# Stage 1: decode once, score cuts, detect faces


def probe_video(video_path: StrPath) -> VideoInfo:
    """Read the display size and frame rate of the first video stream (see ``ffmpeg.probe_video``,
    which applies the display rotation as ffmpeg's decoder does)."""
    try:
        result, _ = ff.probe_video(video_path)
    except ff.CorruptMediaError as exc:
        raise CandidateError(f"not a readable video: {exc.reason}") from exc
    if result.width <= 0 or result.height <= 0:
        raise CandidateError("the video stream has no frame size")
    return VideoInfo(width=result.width, height=result.height, fps=result.fps)


def _analysis_size(info: VideoInfo, analysis_width: int) -> tuple[int, int]:
    width = min(analysis_width, info.width)
    width -= width % 2
    height = max(2, int(round(info.height * width / info.width / 2)) * 2)
    return width, height


def iter_frames(
    video_path: StrPath, width: int, height: int, *, color: bool = False
) -> Iterator[np.ndarray]:
    """Yield chunks ``(n, height, width[, 3])`` of uint8 frames decoded and scaled by ffmpeg.

    Every decoded frame is passed through (no frame-rate conversion), so the frame numbers agree
    with ``cut_clip``. The chunks reuse one buffer: copy a frame to keep it.
    """
    channels = 3 if color else 1
    frame_bytes = width * height * channels
    cmd = [
        ff.ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", os.fspath(video_path), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", f"scale={width}:{height}:flags=area",
        "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "bgr24" if color else "gray", "pipe:1",
    ]  # fmt: skip
    shape: tuple[int, ...] = (height, width, 3) if color else (height, width)
    buffer = bytearray(frame_bytes * _CHUNK_FRAMES)
    view = memoryview(buffer)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, bufsize=0
        )
        finished = False
        try:
            assert proc.stdout is not None
            while True:
                got = _read_full(proc.stdout, view)
                frames = got // frame_bytes
                if frames:
                    yield np.frombuffer(buffer, np.uint8, frames * frame_bytes).reshape(
                        (frames, *shape)
                    )
                if got < len(buffer):
                    break
            finished = True
        finally:
            if not finished and proc.poll() is None:
                proc.kill()
            if proc.stdout is not None:
                proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = _tail(errors.read().decode(errors="replace"))
            raise CandidateError(f"ffmpeg could not decode the video: {message}")


def _read_full(stream: Any, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _block_mean(frames: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of a stack of frames (channels averaged too)."""
    n, h, w = frames.shape[:3]
    h2, w2 = h // factor, w // factor
    cropped = frames[:, : h2 * factor, : w2 * factor]
    if cropped.ndim == 4:
        cropped = cropped.mean(axis=3, dtype=np.float32)
    blocks = cropped.reshape(n, h2, factor, w2, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float32)


def scan_video(
    video_path: StrPath,
    *,
    detector: FaceDetector | None = None,
    sample_every: int = DEFAULT_SAMPLE_EVERY,
    analysis_width: int = DEFAULT_ANALYSIS_WIDTH,
    progress: Callable[[int], None] | None = None,
) -> VideoScan:
    """Decode the video once: cut score for every frame, faces on every ``sample_every``-th frame.

    Without a detector only cut scores are computed. ``progress`` is called after every chunk of
    frames with the number of frames decoded so far.
    """
    if sample_every < 1:
        raise ValueError("sample_every must be at least 1")
    info = probe_video(video_path)
    width, height = _analysis_size(info, analysis_width)
    scale_x, scale_y = info.width / width, info.height / height
    factor = max(1, width // _CUT_SCORE_WIDTH)
    color = bool(getattr(detector, "wants_color", False))

    scores: list[float] = []
    detections: dict[int, list[Box]] = {}
    previous: np.ndarray | None = None
    frame_no = 0
    # closing() stops ffmpeg at once when the detector or the progress callback raises.
    with contextlib.closing(iter_frames(video_path, width, height, color=color)) as chunks:
        for chunk in chunks:
            small = _block_mean(chunk, factor)
            if previous is None:
                diffs = np.abs(np.diff(small, axis=0)).mean(axis=(1, 2)) / 255.0
                chunk_scores = np.concatenate([[0.0], diffs])
            else:
                stacked = np.concatenate([previous[None], small])
                chunk_scores = np.abs(np.diff(stacked, axis=0)).mean(axis=(1, 2)) / 255.0
            scores.extend(round(float(s), 5) for s in chunk_scores)
            previous = small[-1].copy()
            if detector is not None:
                first = -frame_no % sample_every
                for offset in range(first, len(chunk), sample_every):
                    found = detector.detect(chunk[offset])
                    detections[frame_no + offset] = [
                        _clamp_box(_scale_box(box, scale_x, scale_y), info.width, info.height)
                        for box in found
                    ]
            frame_no += len(chunk)
            if progress is not None:
                progress(frame_no)
    return VideoScan(
        info=info,
        frame_count=frame_no,
        sample_every=sample_every,
        analysis_width=width,
        cut_scores=scores,
        detections={k: [b for b in v if b.area > 0] for k, v in detections.items()},
    )


def _scale_box(box: Box, sx: float, sy: float) -> Box:
    return Box.from_list([box.x * sx, box.y * sy, box.w * sx, box.h * sy])


def _clamp_box(box: Box, width: int, height: int) -> Box:
    x1, y1 = max(0, box.x), max(0, box.y)
    x2, y2 = min(width, box.x2), min(height, box.y2)
    return Box(x1, y1, max(0, x2 - x1), max(0, y2 - y1))


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


def detect_shots(
    video_path: StrPath,
    *,
    threshold: float = DEFAULT_CUT_THRESHOLD,
    min_shot_frames: int = DEFAULT_MIN_SHOT_FRAMES,
    ratio: float = DEFAULT_CUT_RATIO,
    analysis_width: int = DEFAULT_ANALYSIS_WIDTH,
) -> list[Shot]:
    """Find the shots of a video (decodes it; ``generate_candidates`` shares one decode instead)."""
    scan = scan_video(video_path, detector=None, analysis_width=analysis_width)
    return shots_from_scan(scan, threshold=threshold, ratio=ratio, min_shot_frames=min_shot_frames)


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


# --------------------------------------------------------------------------------------------
# Stage 5: cutting


def cut_clip(
    video_path: StrPath,
    candidate: CandidateClip,
    out_path: StrPath,
    *,
    fps: float,
    crf: int = 20,
    preset: str = "veryfast",
    timeout_s: float = 300,
) -> None:
    """Write one candidate as a square ``out_size`` H.264 (yuv420p) MP4 without audio.

    Seeks accurately to the first frame (decoding from the keyframe before it), crops, scales and
    encodes exactly ``candidate.frame_count`` frames. The file appears at ``out_path`` only when
    complete (temporary file in the same folder, then ``os.replace``).
    """
    out = Path(out_path)
    crop = candidate.crop
    frames = candidate.frame_count
    if frames <= 0 or crop.w <= 0 or crop.h <= 0:
        raise CandidateError("the candidate has no frames or an empty crop")
    seek = ["-ss", f"{(candidate.start_frame - 0.5) / fps:.6f}"] if candidate.start_frame else []
    size = candidate.out_size
    filters = (
        f"crop={crop.w}:{crop.h}:{crop.x}:{crop.y}:exact=1,"
        f"scale={size}:{size}:flags=bicubic,setsar=1,format=yuv420p"
    )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".part.mp4", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    cmd = [
        ff.ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        *seek, "-i", os.fspath(video_path),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1",
        "-vf", filters, "-fps_mode", "passthrough", "-frames:v", str(frames),
        "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-progress", "pipe:1", "-f", "mp4", str(tmp),
    ]  # fmt: skip
    try:
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CandidateError(f"ffmpeg failed to cut the clip: {exc}") from exc
        if done.returncode != 0:
            raise CandidateError(f"ffmpeg failed to cut the clip: {_tail(done.stderr)}")
        written = _last_progress_frame(done.stdout)
        if written != frames:
            raise CandidateError(
                f"the clip has {written} frames instead of {frames} (video shorter than expected?)"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _groups(
    clips: Sequence[CandidateClip], gap_frames: int, max_size: int
) -> list[list[CandidateClip]]:
    """Group clips (sorted by start) that start within ``gap_frames`` of the previous ones."""
    groups: list[list[CandidateClip]] = []
    end = -1
    for clip in clips:
        if groups and len(groups[-1]) < max_size and clip.start_frame - end <= gap_frames:
            groups[-1].append(clip)
            end = max(end, clip.end_frame)
        else:
            groups.append([clip])
            end = clip.end_frame
    return groups


def _frames_written(path: Path) -> int:
    """Count the frames of an MP4 ffmpeg just wrote, from its header (no process started)."""
    from .media import MediaError, probe

    try:
        return probe(path).frame_count
    except MediaError:
        return 0


def cut_clips(
    video_path: StrPath,
    clips: Sequence[CandidateClip],
    out_dir: StrPath,
    *,
    fps: float,
    crf: int = 20,
    preset: str = "veryfast",
    max_gap_s: float = 5.0,
    max_group: int = 16,
    timeout_s: float = 600,
) -> Iterator[tuple[CandidateClip, Path | None, str | None]]:
    """Cut many candidates with few decodes; yield each clip's result as its group is done.

    Each clip is the file ``cut_clip`` would write (``<key>.mp4`` in ``out_dir``: the same seek,
    exact crop, scale and encoder settings, exactly its frames). But where ``cut_clip`` decodes
    from the keyframe before every clip and starts one ffmpeg per clip, here clips that start
    within ``max_gap_s`` of each other (at most ``max_group`` of them) share one ffmpeg: it seeks
    once, decodes the span once, splits the frames to one trim-crop-scale branch and one
    encoder per clip. A longer gap is skipped by seeking.

    Yield ``(clip, path, None)`` for a written clip and ``(clip, None, reason)`` for one that
    could not be cut (every clip of a group when its ffmpeg fails).
    """
    out = Path(out_dir)
    order = sorted(clips, key=lambda c: (c.start_frame, c.track_id, c.piece))
    for clip in order:
        if clip.frame_count <= 0 or clip.crop.w <= 0 or clip.crop.h <= 0:
            raise CandidateError(f"the candidate {clip.key} has no frames or an empty crop")
    for group in _groups(order, int(max_gap_s * fps), max_group):
        first = group[0].start_frame
        seek = ["-ss", f"{(first - 0.5) / fps:.6f}"] if first else []
        graph = [f"[0:v]split={len(group)}" + "".join(f"[s{i}]" for i in range(len(group)))]
        outputs: list[str] = []
        temps: list[Path] = []
        for i, clip in enumerate(group):
            crop, size = clip.crop, clip.out_size
            graph.append(
                f"[s{i}]trim=start_frame={clip.start_frame - first}"
                f":end_frame={clip.end_frame - first},setpts=PTS-STARTPTS,"
                f"crop={crop.w}:{crop.h}:{crop.x}:{crop.y}:exact=1,"
                f"scale={size}:{size}:flags=bicubic,setsar=1,format=yuv420p[o{i}]"
            )
            fd, tmp_name = tempfile.mkstemp(prefix=f".{clip.key}.", suffix=".part.mp4", dir=out)
            os.close(fd)
            temps.append(Path(tmp_name))
            outputs += [
                "-map", f"[o{i}]", "-map_metadata", "-1", "-fps_mode", "passthrough",
                "-frames:v", str(clip.frame_count), "-c:v", "libx264", "-preset", preset,
                "-crf", str(crf), "-pix_fmt", "yuv420p", "-movflags", "+faststart",
                "-f", "mp4", tmp_name,
            ]  # fmt: skip
        cmd = [
            ff.ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            *seek, "-i", os.fspath(video_path), "-filter_complex", ";".join(graph), *outputs,
        ]  # fmt: skip
        try:
            try:
                done = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=timeout_s, check=False
                )
                failure = None if done.returncode == 0 else _tail(done.stderr)
            except (OSError, subprocess.TimeoutExpired) as exc:
                failure = str(exc)
            for clip, tmp in zip(group, temps, strict=True):
                if failure is not None:
                    yield clip, None, f"ffmpeg failed to cut the clip: {failure}"
                    continue
                written = _frames_written(tmp)
                if written != clip.frame_count:
                    yield (
                        clip,
                        None,
                        (
                            f"the clip has {written} frames instead of {clip.frame_count} "
                            "(video shorter than expected?)"
                        ),
                    )
                    continue
                target = out / f"{clip.key}.mp4"
                os.replace(tmp, target)
                yield clip, target, None
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)


def _last_progress_frame(progress: str) -> int:
    written = 0
    for line in progress.splitlines():
        key, _, value = line.partition("=")
        if key == "frame" and value.strip().isdigit():
            written = int(value)
    return written


# --------------------------------------------------------------------------------------------
# Stages 1-4 together


def generate_candidates(
    video_path: StrPath,
    *,
    detector: FaceDetector | None = None,
    sample_every: int = DEFAULT_SAMPLE_EVERY,
    analysis_width: int = DEFAULT_ANALYSIS_WIDTH,
    cut_threshold: float = DEFAULT_CUT_THRESHOLD,
    cut_ratio: float = DEFAULT_CUT_RATIO,
    min_shot_frames: int = DEFAULT_MIN_SHOT_FRAMES,
    iou_threshold: float = 0.3,
    max_missed: int = 3,
    min_hits: int = 2,
    min_frames: int = 8,
    max_frames: int = 47,
    margin: float = 0.25,
    out_size: int = 224,
    progress: Callable[[int], None] | None = None,
) -> GenerationResult:
    """Run stages 1-4 on one video with one decode; ``detector`` defaults to the Haar cascade."""
    params: dict[str, Any] = {
        "detector": type(detector).__name__ if detector is not None else "HaarFaceDetector",
        "sample_every": sample_every,
        "analysis_width": analysis_width,
        "cut_threshold": cut_threshold,
        "cut_ratio": cut_ratio,
        "min_shot_frames": min_shot_frames,
        "iou_threshold": iou_threshold,
        "max_missed": max_missed,
        "min_hits": min_hits,
        "min_frames": min_frames,
        "max_frames": max_frames,
        "margin": margin,
        "out_size": out_size,
    }
    scan = scan_video(
        video_path,
        detector=detector if detector is not None else HaarFaceDetector(),
        sample_every=sample_every,
        analysis_width=analysis_width,
        progress=progress,
    )
    shots = shots_from_scan(
        scan, threshold=cut_threshold, ratio=cut_ratio, min_shot_frames=min_shot_frames
    )
    tracks = track_faces(
        scan, shots, iou_threshold=iou_threshold, max_missed=max_missed, min_hits=min_hits
    )
    candidates = plan_clips(
        tracks, min_frames=min_frames, max_frames=max_frames, margin=margin, out_size=out_size
    )
    return GenerationResult(
        scan=scan,
        shots=shots,
        tracks=tracks,
        candidates=candidates,
        explanation=explain(scan, shots, tracks, candidates, min_frames=min_frames),
        params=params,
    )


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


def _tail(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text[-limit:] if text else "no error message"
