"""The one ffmpeg layer: find the binaries, run them, probe a video, apply display rotation.

This module deliberately does not import Django (media.py, the candidate pipeline, exports and
benchmarks use it). The system ffmpeg is used when there is one, else the one imageio-ffmpeg
ships (the embedded default needs no system package); ffprobe is optional: without it a video
is probed from ffmpeg's log. Every ffmpeg or ffprobe start costs tens of milliseconds of CPU,
so MP4/MOV headers are read in Python and other containers get one ffprobe.

Errors are MediaError with a plain-words ``reason``: CorruptMediaError for input that no retry
helps, TransientMediaError for what may pass (a signal, a timeout, a full disk, no memory).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

StrPath = str | os.PathLike[str]

# Frame rates outside this range come from broken timestamps, not from real cameras.
_MIN_FPS, _MAX_FPS = 1, 240

# errno values (and ffmpeg's strerror text for them) that describe the host, not the input.
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EAGAIN}
)
_TRANSIENT_TEXTS = tuple(os.strerror(code) for code in TRANSIENT_ERRNOS)


class MediaError(Exception):
    """Report a media problem with a plain-words ``reason`` that can be shown to a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CorruptMediaError(MediaError):
    """Signal that the input is not a video, or is corrupt or truncated; retrying cannot help."""


class FramesTooLargeError(CorruptMediaError):
    """Signal frames larger than the configured limit: refused before any frame is decoded."""


class TransientMediaError(MediaError):
    """Signal a failure that may pass on retry: a signal, a timeout, a full disk, no memory."""


@dataclass(frozen=True)
class ProbeResult:
    """Describe a clip: length, frame rate, frame count, size (as displayed) and codec name."""

    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str


def check_frame_size(width: int, height: int, max_pixels: int | None) -> None:
    """Raise FramesTooLargeError for frames over ``max_pixels`` (decoding them would cost
    gigabytes of memory and minutes of a worker)."""
    if max_pixels and width * height > max_pixels:
        raise FramesTooLargeError(
            f"the frames are {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), "
            f"over the limit of {max_pixels / 1e6:.1f} megapixels per frame"
        )


# --------------------------------------------------------------------------- binaries


def ffmpeg_binary() -> str:
    """Return the ffmpeg executable: the system one, else the one bundled by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # lazily: only hosts without a system ffmpeg need it

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffprobe_binary() -> str | None:
    """Return the system ffprobe, or None: imageio-ffmpeg ships none, and without one probing
    falls back to parsing ffmpeg's log."""
    return shutil.which("ffprobe")


# --------------------------------------------------------------------------- running ffmpeg

_LOG_PREFIX = re.compile(r"^\[[^\]]* @ (?:0x)?[0-9a-fA-F]+\]\s*")
# ffmpeg wraps the interesting message in context that means nothing to a user.
_LOG_WRAPPER = re.compile(
    r"^(?:Error opening input files?|Error opening input|Error while decoding stream #\S+)\s*:\s*"
)
_LOG_NOISE = ("Conversion failed!", "Exiting normally", "Error opening input file ")


TICK_S = 1.0


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.communicate()


def failure_reason(stderr: str, path: Path | None = None) -> str:
    """Return ffmpeg's last meaningful log line, without addresses or server paths."""
    lines = []
    for raw in stderr.splitlines():
        line = _LOG_PREFIX.sub("", raw.strip())
        if path is not None:
            line = line.replace(f"{path}: ", "").replace(str(path), path.name)
        line = _LOG_WRAPPER.sub("", line)
        if line and not line.startswith(_LOG_NOISE):
            lines.append(line)
    return lines[-1] if lines else "ffmpeg gave no reason"


def run(
    cmd: list[str], timeout_s: float, *, tick: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an ffmpeg/ffprobe command; raise TransientMediaError for failures that may pass.

    ``tick`` is called about every TICK_S while the command runs (a worker renews its lease
    there); whatever it raises stops the command and propagates.
    """
    tool = "ffprobe" if "ffprobe" in Path(cmd[0]).name else "ffmpeg"
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,  # ffmpeg reads keys from stdin and stalls in the background
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(cmd, timeout_s)
            try:
                stdout, stderr = proc.communicate(timeout=min(remaining, TICK_S))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
                if tick is not None:
                    tick()
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise TransientMediaError(f"{tool} took longer than {timeout_s:g} s and was stopped")
    except BaseException:
        _stop(proc)
        raise
    result = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    if result.returncode < 0:  # killed: OOM killer, worker shutdown, ...
        name = signal.Signals(-result.returncode).name
        raise TransientMediaError(f"{tool} was stopped by signal {name}")
    if result.returncode == 255:  # ffmpeg's exit code after catching SIGINT/SIGTERM
        raise TransientMediaError(f"{tool} was interrupted by a signal")
    if result.returncode != 0 and any(text in result.stderr for text in _TRANSIENT_TEXTS):
        raise TransientMediaError(f"{tool} failed: {failure_reason(result.stderr)}")
    return result


# --------------------------------------------------------------------------- probing


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def frame_rate(value: object) -> Fraction | None:
    """Parse "30000/1001", "25" or "29.97" into a plausible frame rate, else None."""
    try:
        rate = Fraction(str(value)).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if _MIN_FPS <= rate <= _MAX_FPS else None


def _video_result(
    *,
    codec: str,
    width: int,
    height: int,
    rotation: float,
    count: int | None,
    duration: float | None,
    rates: tuple[Fraction | None, ...],
) -> ProbeResult:
    if not count:
        raise CorruptMediaError("ffmpeg found no video frames in the file")
    # The first plausible of: container's average rate, frames per second of duration, nominal.
    by_duration = frame_rate(Fraction(count) / Fraction(duration)) if duration else None
    fps = next((r for r in (rates[0], by_duration, *rates[1:]) if r), Fraction(25))
    width, height = display_size(width, height, rotation)
    return ProbeResult(
        duration_s=duration or float(count / fps),
        fps=float(fps),
        frame_count=count,
        width=width,
        height=height,
        codec=codec,
    )


# ISO-BMFF sample-entry codes -> ffmpeg codec names, for the MP4/MOV header fast path.
_MP4_CODECS = {
    b"avc1": "h264",
    b"avc3": "h264",
    b"hvc1": "hevc",
    b"hev1": "hevc",
    b"mp4v": "mpeg4",
    b"av01": "av1",
    b"vp09": "vp9",
}


def _mp4_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload start, end) of the ISO-BMFF boxes in ``data[start:end]``."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:  # "extends to the end"
            size = end - start
        if size < header or start + size > end:
            raise ValueError("box overruns its parent")
        yield kind, start + header, start + size
        start += size


def _read_moov(path: Path) -> bytes | None:
    """Return the moov payload of a complete, unfragmented MP4/MOV, else None."""
    with path.open("rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        position, moov, has_media = 0, None, False
        while position < file_size:  # hop over top-level boxes without reading mdat
            fh.seek(position)
            header = fh.read(16)
            if len(header) < 16:
                return None
            size, kind = struct.unpack_from(">I4s", header)
            start = position + 8
            if size == 1:
                size, start = struct.unpack_from(">Q", header, 8)[0], position + 16
            elif size == 0:
                size = file_size - position
            if size < start - position or position + size > file_size or kind == b"moof":
                return None  # truncated, garbage or fragmented: ffprobe explains those better
            if kind == b"moov":
                fh.seek(start)
                moov = fh.read(position + size - start)
            has_media = has_media or kind == b"mdat"
            position += size
    # A file cut right after its moov has no mdat: let ffprobe find the frames missing.
    return moov if has_media else None


def _probe_mp4(path: Path) -> tuple[ProbeResult, Fraction] | None:
    """Read an MP4/MOV header in Python; None means "ask ffprobe".

    Starting ffprobe costs more CPU than transcoding a whole 224x224 clip, and MP4 headers
    already hold what ffprobe would report, so clean MP4/MOV files skip it.
    """
    try:
        moov = _read_moov(path)
        if moov is None:
            return None
        for kind, start, end in _mp4_boxes(moov, 0, len(moov)):
            if kind != b"trak":
                continue
            boxes: dict[bytes, int] = {}  # box type -> payload offset, first of each in the track
            pending = [(start, end)]
            while pending:
                for child, child_start, child_end in _mp4_boxes(moov, *pending.pop()):
                    boxes.setdefault(child, child_start)
                    if child in (b"mdia", b"minf", b"stbl"):
                        pending.append((child_start, child_end))
            handler = boxes[b"hdlr"] + 8  # after version/flags and pre_defined
            if moov[handler : handler + 4] == b"vide":
                return _mp4_track(moov, boxes)
    except (ValueError, KeyError, ZeroDivisionError, struct.error):
        pass
    return None


def _mp4_track(moov: bytes, boxes: dict[bytes, int]) -> tuple[ProbeResult, Fraction] | None:
    mdhd, tkhd, stsd = boxes[b"mdhd"], boxes[b"tkhd"], boxes[b"stsd"]
    long_mdhd, long_tkhd = moov[mdhd] == 1, moov[tkhd] == 1  # version 1 has 64-bit times
    timescale, duration = struct.unpack_from(
        ">IQ" if long_mdhd else ">II", moov, mdhd + 12 + 8 * long_mdhd
    )
    count = struct.unpack_from(">I", moov, boxes[b"stsz"] + 8)[0]
    entry_size, fourcc = struct.unpack_from(">I4s", moov, stsd + 8)
    width, height = struct.unpack_from(">HH", moov, stsd + 8 + 32)
    matrix_a, matrix_b = struct.unpack_from(">ii", moov, tkhd + (52 if long_tkhd else 40))
    entry = moov[stsd + 8 : stsd + 8 + entry_size]
    sar = Fraction(1)
    for child, child_start, _ in _mp4_boxes(entry, 86, len(entry)):  # after the fixed fields
        if child == b"pasp":  # pixel aspect ratio, e.g. anamorphic DV
            sar = Fraction(*struct.unpack_from(">II", entry, child_start))
    if fourcc not in _MP4_CODECS or not (count and timescale and duration):
        return None  # unusual codec or a fragmented track: leave it to ffprobe
    seconds = duration / timescale
    result = _video_result(
        codec=_MP4_CODECS[fourcc],
        width=width,
        height=height,
        rotation=90 if matrix_a == 0 and matrix_b != 0 else 0,
        count=count,
        duration=seconds,
        rates=(frame_rate(Fraction(count) / Fraction(seconds)),),
    )
    return result, sar


def probe_video(path: StrPath, timeout_s: float = 60.0) -> tuple[ProbeResult, Fraction]:
    """Probe a video file; return the result (size as displayed) and the pixel aspect ratio.

    Raise CorruptMediaError for a file that is not a readable video, TransientMediaError for
    failures that may pass.
    """
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        # ffmpeg reads a cut AVI without complaint; its RIFF header says how long it should be.
        missing = int.from_bytes(head[4:8], "little") + 8 - path.stat().st_size
        if missing > 0:
            raise CorruptMediaError(f"the file is truncated: {missing} bytes are missing")
    fast = _probe_mp4(path)
    if fast is not None:
        return fast
    ffprobe = ffprobe_binary()
    if ffprobe is None:
        return _probe_video_with_ffmpeg(path, timeout_s)
    # -count_packets reads the whole (tiny) file: it yields a true frame count where headers
    # lack one (AVI, MKV, TS) and exposes truncation where they do have one (MP4).
    # "V" skips cover-art pictures that some MP4/MKV files carry as a video stream.
    cmd = [ffprobe, "-v", "error", "-count_packets", "-select_streams", "V:0"]
    cmd += ["-show_streams", "-show_format", "-of", "json", str(path)]
    proc = run(cmd, timeout_s)
    if proc.returncode != 0:
        raise CorruptMediaError(
            f"ffmpeg could not read the file: {failure_reason(proc.stderr, path)}"
        )
    data = json.loads(proc.stdout or "{}")
    if not data.get("streams"):
        raise CorruptMediaError("not a video file: it contains no video stream")
    stream = data["streams"][0]
    packets, declared = _int(stream.get("nb_read_packets")), _int(stream.get("nb_frames"))
    # In MP4/MOV every sample the header lists is a packet, so fewer packets means a cut file.
    # (AVI lists dropped frames that have no packet, so the rule does not hold there.)
    mov = "mov" in data.get("format", {}).get("format_name", "")
    if mov and declared and packets is not None and packets < declared:
        raise CorruptMediaError(
            f"the file is truncated: only {packets} of {declared} frames remain"
        )
    if "partial file" in proc.stderr:
        raise CorruptMediaError("the file is truncated: it ends early")
    rotation = stream_rotation(stream)
    result = _video_result(
        codec=stream.get("codec_name", "unknown"),
        width=_int(stream.get("width")) or 0,
        height=_int(stream.get("height")) or 0,
        rotation=rotation,
        count=packets or declared,
        duration=_float(stream.get("duration")) or _float(data.get("format", {}).get("duration")),
        rates=(frame_rate(stream.get("avg_frame_rate")), frame_rate(stream.get("r_frame_rate"))),
    )
    sar = frame_rate(str(stream.get("sample_aspect_ratio", "1")).replace(":", "/"))
    return result, sar or Fraction(1)


def _probe_video_with_ffmpeg(path: Path, timeout_s: float) -> tuple[ProbeResult, Fraction]:
    """Probe without ffprobe: stream-copy the video to nowhere and read ffmpeg's log."""
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path)]
    cmd += ["-map", "0:V:0", "-c", "copy", "-f", "null", "-"]
    proc = run(cmd, timeout_s)
    log = proc.stderr
    if "matches no streams" in log:
        raise CorruptMediaError("not a video file: it contains no video stream")
    if proc.returncode != 0:
        raise CorruptMediaError(f"ffmpeg could not read the file: {failure_reason(log, path)}")
    if "partial file" in log:
        raise CorruptMediaError("the file is truncated: it ends early")
    described = log.split("Output #0", 1)[0]  # the input's description only
    stream = re.search(r"Stream #0:.*?: Video: (\w+)(.*)", described)
    if stream is None:
        raise CorruptMediaError("not a video file: it contains no video stream")
    size = re.search(r", (\d+)x(\d+)", stream[2])
    sar = re.search(r"SAR (\d+):(\d+)", stream[2])
    fps = re.search(r", ([\d.]+) fps", stream[2])
    tbr = re.search(r", ([\d.]+) tbr", stream[2])
    clock = re.search(r"Duration: (\d+):(\d+):([\d.]+)", described)
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", described)
    frames = re.findall(r"frame=\s*(\d+)", log)
    result = _video_result(
        codec=stream[1],
        width=int(size[1]) if size else 0,
        height=int(size[2]) if size else 0,
        rotation=float(rotation[1]) if rotation else 0.0,
        count=int(frames[-1]) if frames else None,
        duration=(int(clock[1]) * 3600 + int(clock[2]) * 60 + float(clock[3])) if clock else None,
        rates=(frame_rate(fps[1]) if fps else None, frame_rate(tbr[1]) if tbr else None),
    )
    aspect = Fraction(int(sar[1]), int(sar[2])) if sar and int(sar[2]) else None
    return result, aspect if aspect else Fraction(1)


# --------------------------------------------------------------------------- display rotation


def stream_rotation(stream: dict) -> float:
    """Return the display rotation of an ffprobe stream, in degrees.

    Phone videos store their orientation as a display matrix (side data, what ffmpeg uses) or,
    written by old tools, as a ``rotate`` tag; the matrix wins when both are there.
    """
    rotation = _float_any(stream.get("tags", {}).get("rotate")) or 0.0
    for side_data in stream.get("side_data_list", []) or []:
        if "rotation" in side_data:
            rotation = _float_any(side_data.get("rotation")) or 0.0
    return rotation


def display_size(width: int, height: int, rotation: float) -> tuple[int, int]:
    """Return the size of the frames ffmpeg decodes: it autorotates, so a quarter turn swaps
    the stored width and height."""
    if round(abs(rotation)) % 180 == 90:
        return height, width
    return width, height


def _float_any(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
