"""The candidate API only tests use: all stages on one video in one call, one clip cut on its
own, shots without face detection. The application runs the stages one by one
(clips/pipeline.py); these check them end to end and are the reference ``cut_clips`` is held to.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clips import ffmpeg as ff
from clips.candidates import (
    DEFAULT_ANALYSIS_WIDTH,
    DEFAULT_CUT_RATIO,
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_MIN_SHOT_FRAMES,
    DEFAULT_SAMPLE_EVERY,
    CandidateClip,
    CandidateError,
    FaceDetector,
    HaarFaceDetector,
    Shot,
    Track,
    VideoInfo,
    VideoScan,
    explain,
    plan_clips,
    scan_video,
    shots_from_scan,
    track_faces,
)
from clips.candidates.scan import StrPath, _tail


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
