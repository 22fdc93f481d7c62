"""Stage 5: write candidates as 224x224 H.264 MP4s, one decode per run of nearby candidates."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .. import ffmpeg as ff
from .plan import CandidateClip
from .scan import CandidateError, StrPath, _tail

# --------------------------------------------------------------------------------------------
# Stage 5: cutting


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
    try:
        return ff.probe_video(path)[0].frame_count
    except ff.MediaError:
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
