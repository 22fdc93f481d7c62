"""Stage 1: decode once; cut scores for every frame, faces on every ``sample_every``-th frame.

Also the vocabulary every stage shares: ``CandidateError``, ``Box``, the video description and
the face detectors.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from clips.lazy import lazy_module

from .. import ffmpeg as ff

np = lazy_module("numpy")

StrPath = str | os.PathLike[str]

# Width of the frames the analysis stage decodes (never upscaled). Haar finds faces down to about
# 24 px here, i.e. about 50 px in a 640-wide source: smaller faces make useless 224 px crops.
DEFAULT_ANALYSIS_WIDTH = 320
DEFAULT_SAMPLE_EVERY = 3
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


def _tail(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    return text[-limit:] if text else "no error message"
