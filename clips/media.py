"""Probe, transcode and fingerprint clip media with ffmpeg.

This module deliberately does not import Django: Celery workers, management commands, demo-data
scripts and benchmarks all use it, and it must stay testable without settings or a database.

Every ffmpeg or ffprobe start costs tens of milliseconds of CPU (Debian's build links ~200
shared libraries), about as much as encoding a whole 224x224 clip, so the code keeps launches to
a minimum: MP4/MOV headers and frame folders are read in Python, other containers get one
ffprobe, and a single ffmpeg run writes both the MP4 and the poster.

Input files that cannot be opened at all raise OSError as usual; everything ffmpeg-related is a
MediaError.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import ffmpeg

StrPath = str | os.PathLike[str]

# One thread per ffmpeg: many clips are converted in parallel, and for 224x224 frames thread
# start-up and synchronisation cost more than they save.
_THREADS = 1
_CRF = 20
_POSTER_QUALITY = 3  # mjpeg -q:v, 2 (best) .. 31
_CHUNK = 1 << 20
# Frame rates outside this range come from broken timestamps, not from real cameras.
_MIN_FPS, _MAX_FPS = 1, 240

# errno values (and ffmpeg's strerror text for them) that describe the host, not the input.
_TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EAGAIN}
)
_TRANSIENT_TEXTS = tuple(os.strerror(code) for code in _TRANSIENT_ERRNOS)


class MediaError(Exception):
    """Report a media problem with a plain-words ``reason`` that can be shown to a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CorruptMediaError(MediaError):
    """Signal that the input is not a video, or is corrupt or truncated; retrying cannot help."""


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


# --------------------------------------------------------------------------- binaries


def ffmpeg_binary() -> str:
    """Return the ffmpeg executable: the system one, else the one bundled by imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # lazily: only hosts without a system ffmpeg need it

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffprobe_binary() -> str | None:
    # imageio-ffmpeg ships no ffprobe; without one, probing falls back to parsing ffmpeg's log.
    return shutil.which("ffprobe")


# --------------------------------------------------------------------------- sniffing

# Matched against the first bytes of a file. Detection is by content because uploads arrive
# with arbitrary or missing extensions.
_VIDEO_SIGNATURES = tuple(
    re.compile(pattern, re.DOTALL)
    for pattern in (
        rb"....ftyp(?!heic|heix|mif1|avif)",  # MP4, MOV, 3GP, M4V (but not HEIF/AVIF stills)
        rb"....(?:moov|mdat|wide|free|skip)",  # QuickTime files written without an ftyp box
        rb"RIFF....AVI ",  # AVI
        rb"\x1a\x45\xdf\xa3",  # Matroska, WebM (EBML header)
        rb"\x47.{187}\x47",  # MPEG-TS: sync byte every 188 bytes
        rb".{4}\x47.{191}\x47",  # M2TS / BDAV: 4-byte timecode before each TS packet
        rb"\x00\x00\x01\xba",  # MPEG program stream (.mpg, .vob)
        rb"\x00\x00\x01\xb3",  # MPEG-1/2 video elementary stream
        rb"FLV\x01",  # Flash video
        rb"OggS",  # Ogg (Theora)
        rb"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF / WMV
        rb"YUV4MPEG2 ",  # Y4M raw video
    )
)
_IMAGE_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png"}
# A file with one of these suffixes in a frame folder must really be an image.
_FRAME_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})


def _image_kind(head: bytes) -> str | None:
    for magic, kind in _IMAGE_SIGNATURES.items():
        if head.startswith(magic):
            return kind
    return None


def _natural_key(name: str) -> tuple[list[int | str], str]:
    # "2.jpg" < "10.jpg" < "011.jpg"; the name itself breaks ties such as "1.jpg" vs "01.jpg".
    parts = re.split(r"(\d+)", name.lower())
    return [int(part) if i % 2 else part for i, part in enumerate(parts)], name


def _frame_files(folder: Path) -> list[tuple[Path, str]]:
    """List a folder's JPEG/PNG frames in natural order as (path, "jpeg" | "png") pairs."""
    with os.scandir(folder) as entries:
        candidates = sorted(
            (e for e in entries if not e.name.startswith(".") and e.is_file()),
            key=lambda e: _natural_key(e.name),
        )
    frames = []
    for entry in candidates:
        with open(entry.path, "rb") as fh:
            kind = _image_kind(fh.read(8))
        if kind:
            frames.append((Path(entry.path), kind))
        elif Path(entry.name).suffix.lower() in _FRAME_SUFFIXES:
            # Skipping it would silently shorten the clip, so a damaged frame fails the folder.
            raise CorruptMediaError(f"frame {entry.name} is not a readable JPEG or PNG image")
        # Anything else (notes.txt, Thumbs.db) is not part of the clip and is ignored.
    return frames


def _require_frames(folder: Path) -> list[tuple[Path, str]]:
    frames = _frame_files(folder)
    if not frames:
        raise CorruptMediaError("not a video file: the folder contains no JPEG or PNG frames")
    return frames


def sniff_kind(path: StrPath) -> str:
    """Classify ``path`` by content as "video", "frames" (a folder of JPEG/PNG) or "image".

    Raise CorruptMediaError for anything else.
    """
    path = Path(path)
    if path.is_dir():
        _require_frames(path)
        return "frames"
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise CorruptMediaError("not a video file: the file is empty")
    if any(signature.match(head) for signature in _VIDEO_SIGNATURES):
        return "video"
    if _image_kind(head):
        return "image"
    raise CorruptMediaError("not a video file: its content matches no known video format")


# --------------------------------------------------------------------------- running ffmpeg

_LOG_PREFIX = re.compile(r"^\[[^\]]* @ (?:0x)?[0-9a-fA-F]+\]\s*")
# ffmpeg wraps the interesting message in context that means nothing to a user.
_LOG_WRAPPER = re.compile(
    r"^(?:Error opening input files?|Error opening input|Error while decoding stream #\S+)\s*:\s*"
)
_LOG_NOISE = ("Conversion failed!", "Exiting normally", "Error opening input file ")


def _reason(stderr: str, path: Path | None = None) -> str:
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


def _run(cmd: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run an ffmpeg/ffprobe command; raise TransientMediaError for failures that may pass."""
    tool = "ffprobe" if "ffprobe" in Path(cmd[0]).name else "ffmpeg"
    try:
        proc = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,  # ffmpeg reads keys from stdin and stalls in the background
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has already killed the process
        raise TransientMediaError(f"{tool} took longer than {timeout_s:g} s and was stopped")
    if proc.returncode < 0:  # killed: OOM killer, worker shutdown, ...
        name = signal.Signals(-proc.returncode).name
        raise TransientMediaError(f"{tool} was stopped by signal {name}")
    if proc.returncode == 255:  # ffmpeg's exit code after catching SIGINT/SIGTERM
        raise TransientMediaError(f"{tool} was interrupted by a signal")
    if proc.returncode != 0 and any(text in proc.stderr for text in _TRANSIENT_TEXTS):
        raise TransientMediaError(f"{tool} failed: {_reason(proc.stderr)}")
    return proc


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


def _rate(value: object) -> Fraction | None:
    """Parse "30000/1001", "25" or "29.97" into a plausible frame rate, else None."""
    try:
        rate = Fraction(str(value)).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if _MIN_FPS <= rate <= _MAX_FPS else None


def _image_size(path: Path, kind: str) -> tuple[int, int]:
    with path.open("rb") as fh:
        data = fh.read(1 << 20)  # headers (EXIF included) sit well inside the first MiB
    if kind == "png":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        raise CorruptMediaError(f"frame {path.name} is not a readable PNG image")
    i = 2  # walk the JPEG marker segments up to the start-of-frame header
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            i += 2
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    raise CorruptMediaError(f"frame {path.name} is not a readable JPEG image")


def _probe_frames(frames: list[tuple[Path, str]], frames_fps: float) -> ProbeResult:
    # No subprocess: the folder listing and the first frame's header say everything needed.
    first, kind = frames[0]
    width, height = _image_size(first, kind)
    return ProbeResult(
        duration_s=len(frames) / frames_fps,
        fps=float(frames_fps),
        frame_count=len(frames),
        width=width,
        height=height,
        codec="mjpeg" if kind == "jpeg" else "png",
    )


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
    by_duration = _rate(Fraction(count) / Fraction(duration)) if duration else None
    fps = next((r for r in (rates[0], by_duration, *rates[1:]) if r), Fraction(25))
    if round(rotation) % 180 == 90:  # ffmpeg auto-rotates, so the decoded frames are turned
        width, height = height, width
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
        rates=(_rate(Fraction(count) / Fraction(seconds)),),
    )
    return result, sar


def _probe_video(path: Path, timeout_s: float) -> tuple[ProbeResult, Fraction]:
    """Probe a video file; return the result and the pixel aspect ratio."""
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
    ffprobe = _ffprobe_binary()
    if ffprobe is None:
        return _probe_video_with_ffmpeg(path, timeout_s)
    # -count_packets reads the whole (tiny) file: it yields a true frame count where headers
    # lack one (AVI, MKV, TS) and exposes truncation where they do have one (MP4).
    # "V" skips cover-art pictures that some MP4/MKV files carry as a video stream.
    cmd = [ffprobe, "-v", "error", "-count_packets", "-select_streams", "V:0"]
    cmd += ["-show_streams", "-show_format", "-of", "json", str(path)]
    proc = _run(cmd, timeout_s)
    if proc.returncode != 0:
        raise CorruptMediaError(f"ffmpeg could not read the file: {_reason(proc.stderr, path)}")
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
    # Phone videos store their orientation as a tag (old ffmpeg) or a display matrix (new).
    rotation = _int(stream.get("tags", {}).get("rotate")) or 0
    for side_data in stream.get("side_data_list", []):
        rotation = _int(side_data.get("rotation")) or rotation
    result = _video_result(
        codec=stream.get("codec_name", "unknown"),
        width=_int(stream.get("width")) or 0,
        height=_int(stream.get("height")) or 0,
        rotation=rotation,
        count=packets or declared,
        duration=_float(stream.get("duration")) or _float(data.get("format", {}).get("duration")),
        rates=(_rate(stream.get("avg_frame_rate")), _rate(stream.get("r_frame_rate"))),
    )
    sar = _rate(str(stream.get("sample_aspect_ratio", "1")).replace(":", "/"))
    return result, sar or Fraction(1)


def _probe_video_with_ffmpeg(path: Path, timeout_s: float) -> tuple[ProbeResult, Fraction]:
    """Probe without ffprobe: stream-copy the video to nowhere and read ffmpeg's log."""
    cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(path)]
    cmd += ["-map", "0:V:0", "-c", "copy", "-f", "null", "-"]
    proc = _run(cmd, timeout_s)
    log = proc.stderr
    if "matches no streams" in log:
        raise CorruptMediaError("not a video file: it contains no video stream")
    if proc.returncode != 0:
        raise CorruptMediaError(f"ffmpeg could not read the file: {_reason(log, path)}")
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
        rates=(_rate(fps[1]) if fps else None, _rate(tbr[1]) if tbr else None),
    )
    aspect = Fraction(int(sar[1]), int(sar[2])) if sar and int(sar[2]) else None
    return result, aspect if aspect else Fraction(1)


def probe(path: StrPath, *, frames_fps: float = 25.0, timeout_s: float = 60.0) -> ProbeResult:
    """Describe a video file or a frame folder (played at ``frames_fps``).

    Raise CorruptMediaError for input that is not a readable video, TransientMediaError for
    failures that may pass.
    """
    path = Path(path)
    kind = sniff_kind(path)
    if kind == "frames":
        return _probe_frames(_require_frames(path), frames_fps)
    if kind == "image":
        raise CorruptMediaError("not a video file: it is a single still image")
    return _probe_video(path, timeout_s)[0]


# --------------------------------------------------------------------------- transcoding


def _ratio(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _fit(width: float, height: float, max_side: int) -> tuple[int, int]:
    """Shrink (never enlarge) to fit ``max_side``, keeping aspect; floor to even for yuv420p."""
    scale = min(1.0, max_side / max(width, height, 1))

    def even(side: float) -> int:
        # The epsilon keeps 448.0 from becoming 446 when float maths lands on 447.99999.
        return max(2, int(side * scale + 1e-6) // 2 * 2)

    return even(width), even(height)


def _reserve_temp(dst: Path) -> Path:
    """Create an empty, hidden temp file next to ``dst`` for ffmpeg to overwrite.

    Creating it here, in Python, makes an unwritable destination fail with a plain OSError
    instead of an ffmpeg message that would be mistaken for a corrupt input.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:12]}.part")
    tmp.open("xb").close()
    return tmp


def _link_frames(frames: list[tuple[Path, str]], work: Path) -> str:
    """Symlink frames as 000000.jpg, 000001.jpg, ... and return the image2 pattern.

    The image2 demuxer needs contiguous, equally padded numbers; symlinks give it that whatever
    the original names are, without copying any pixels.
    """
    kinds = {kind for _, kind in frames}
    if len(kinds) > 1:
        raise CorruptMediaError("the frame folder mixes JPEG and PNG frames")
    suffix = ".jpg" if kinds == {"jpeg"} else ".png"
    for index, (frame, _) in enumerate(frames):
        os.symlink(frame.resolve(), work / f"{index:06d}{suffix}")
    return str(work / f"%06d{suffix}")


def transcode(
    src: StrPath,
    dst_mp4: StrPath,
    dst_poster_jpg: StrPath,
    *,
    max_side: int = 448,
    fps: float | None = None,
    frames_fps: float = 25.0,
    timeout_s: float = 120.0,
) -> ProbeResult:
    """Convert a video file or frame folder to a web-ready MP4 plus a mid-clip poster JPEG.

    The MP4 is H.264/yuv420p at a constant frame rate (``fps``, else the input's average rate),
    without audio, with the moov atom first, and scaled so its longest side is at most
    ``max_side`` with even dimensions. Both files appear atomically or not at all. Return the
    properties of the written MP4.

    Raise CorruptMediaError for bad input and TransientMediaError for failures that may pass.
    """
    try:
        return _transcode(
            Path(src), Path(dst_mp4), Path(dst_poster_jpg), max_side, fps, frames_fps, timeout_s
        )
    except OSError as exc:
        if exc.errno in _TRANSIENT_ERRNOS:
            raise TransientMediaError(f"could not write the clip: {exc.strerror}") from exc
        raise


def _transcode(
    src: Path,
    dst_mp4: Path,
    dst_poster: Path,
    max_side: int,
    fps: float | None,
    frames_fps: float,
    timeout_s: float,
) -> ProbeResult:
    kind = sniff_kind(src)
    if kind == "image":
        raise CorruptMediaError("not a video file: it is a single still image")
    with contextlib.ExitStack() as cleanup:
        if kind == "frames":
            frames = _require_frames(src)
            info, sar = _probe_frames(frames, frames_fps), Fraction(1)
            work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="ferv-frames-")))
            source = ffmpeg.input(
                _link_frames(frames, work),
                format="image2",
                framerate=_ratio(Fraction(frames_fps).limit_denominator(1001)),
                start_number=0,
                threads=_THREADS,
            )
        else:
            info, sar = _probe_video(src, timeout_s)
            source = ffmpeg.input(str(src), threads=_THREADS)

        rate = Fraction(fps or info.fps).limit_denominator(1001)
        width, height = _fit(info.width * float(sar), info.height, max_side)
        # Frames after the fps filter; only used to aim the poster at the middle of the clip.
        expected = max(1, round(info.duration_s * rate))

        tmp_mp4 = _reserve_temp(dst_mp4)
        cleanup.callback(tmp_mp4.unlink, missing_ok=True)
        tmp_poster = _reserve_temp(dst_poster)
        cleanup.callback(tmp_poster.unlink, missing_ok=True)

        # One graph feeds both outputs so the input is decoded once. The fps filter turns VFR
        # into CFR; out_range pins limited range, which newer ffmpeg would otherwise widen to
        # full range for the whole graph because the JPEG branch wants it.
        branches = (
            source["V:0"]
            .filter("fps", fps=_ratio(rate))
            .filter("scale", width, height, out_range="tv")
            .filter("setsar", "1")
            .filter("format", "yuv420p")
            .split()
        )
        mp4 = ffmpeg.output(
            branches[0],
            str(tmp_mp4),
            format="mp4",
            preset="veryfast",
            crf=_CRF,
            pix_fmt="yuv420p",
            r=_ratio(rate),
            movflags="+faststart",
            an=None,
            threads=_THREADS,
            map_metadata=-1,  # phone videos carry GPS tags; labellers need none of it
            **{"c:v": "libx264", "fps_mode": "cfr"},
        )
        poster = ffmpeg.output(
            branches[1].filter("select", f"gte(n,{expected // 2})"),
            str(tmp_poster),
            format="image2",
            update=1,
            **{"c:v": "mjpeg", "q:v": _POSTER_QUALITY, "frames:v": 1, "fps_mode": "passthrough"},
        )
        cmd = (
            ffmpeg.merge_outputs(mp4, poster)
            # -progress reports the frame count of the first output (the MP4), which saves
            # probing the result afterwards.
            .global_args("-hide_banner", "-nostdin", "-loglevel", "error", "-progress", "pipe:1")
            .global_args("-filter_complex_threads", str(_THREADS))
            .overwrite_output()
            .compile(cmd=ffmpeg_binary())
        )
        proc = _run(cmd, timeout_s)
        if proc.returncode != 0:
            raise CorruptMediaError(
                f"ffmpeg could not convert the file: {_reason(proc.stderr, src)}"
            )
        counts = re.findall(r"^frame=(\d+)$", proc.stdout, re.MULTILINE)
        if counts:
            frame_count = int(counts[-1])
        else:  # an ffmpeg without -progress output: measure the result instead
            frame_count = _probe_video(tmp_mp4, timeout_s)[0].frame_count
        if frame_count == 0 or tmp_mp4.stat().st_size == 0:
            raise CorruptMediaError("ffmpeg could not decode any frame of the file")
        if tmp_poster.stat().st_size == 0:
            # The clip had fewer frames than its header promised: take the first one instead.
            cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            cmd += ["-i", str(tmp_mp4), "-frames:v", "1", "-q:v", str(_POSTER_QUALITY)]
            cmd += ["-update", "1", "-f", "image2", str(tmp_poster)]
            if _run(cmd, timeout_s).returncode != 0 or tmp_poster.stat().st_size == 0:
                raise CorruptMediaError("ffmpeg could not extract a poster frame")

        os.replace(tmp_mp4, dst_mp4)
        os.replace(tmp_poster, dst_poster)
    return ProbeResult(
        duration_s=frame_count / float(rate),
        fps=float(rate),
        frame_count=frame_count,
        width=width,
        height=height,
        codec="h264",
    )


# --------------------------------------------------------------------------- checksums


def _feed(update: Callable[[bytes], object], fh: BinaryIO) -> None:
    for chunk in iter(lambda: fh.read(_CHUNK), b""):
        update(chunk)


def file_sha256(source: StrPath | BinaryIO) -> str:
    """Return the hex SHA-256 of a file given by path or as a binary file object.

    A seekable file object is hashed from its start and left at the position it had.
    """
    digest = hashlib.sha256()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            _feed(digest.update, fh)
        return digest.hexdigest()
    seekable = bool(getattr(source, "seekable", lambda: False)())
    position = source.tell() if seekable else 0
    if seekable:
        source.seek(0)
    try:
        _feed(digest.update, source)
    finally:
        if seekable:
            source.seek(position)
    return digest.hexdigest()


def dir_sha256(path: StrPath) -> str:
    """Return the hex SHA-256 of a frame folder: its frames' names and contents, in order.

    Files that are not frames (notes, Thumbs.db, hidden files) do not count.
    """
    digest = hashlib.sha256()
    for frame, _ in _require_frames(Path(path)):
        # Name and size prefixes keep ("a", "bc") and ("ab", "c") from hashing alike.
        digest.update(frame.name.encode("utf-8") + b"\0")
        digest.update(frame.stat().st_size.to_bytes(8, "big"))
        with frame.open("rb") as fh:
            _feed(digest.update, fh)
    return digest.hexdigest()


# --------------------------------------------------------------------------- synthetic media


def _check_made(cmd: list[str], target: Path) -> None:
    proc = _run(cmd, timeout_s=120)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg could not make {target.name}: {_reason(proc.stderr)}")


def _even(side: int) -> int:
    return side + side % 2


def make_test_video(
    path: StrPath,
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (224, 224),
    fps: int = 25,
    codec: str = "libx264",
    container: str | None = None,
    vfr: bool = False,
    pattern: str = "testsrc2",
    audio: bool = False,
) -> Path:
    """Write a synthetic clip from an ffmpeg lavfi source (testsrc2, smptebars, mandelbrot...).

    ``container`` forces an ffmpeg muxer name; by default the extension decides. ``vfr=True``
    writes genuinely variable-rate timestamps: the first half of the frames at ``fps``, the
    rest at half that rate, so the average rate is two thirds of ``fps``. ``audio=True`` adds
    a sine tone. No text is drawn, so no fonts are needed.
    """
    path = Path(path)
    width, height = size
    # Sources round odd sizes down for yuv420p, so render even and scale to the exact size.
    source = ffmpeg.input(
        f"{pattern}=size={_even(width)}x{_even(height)}:rate={fps}", format="lavfi"
    )
    if vfr:
        count = max(2, round(seconds * fps / 1.5))
        video = source.filter("trim", end_frame=count).filter(
            "setpts", f"(N+max(0,N-{count // 2}))/({fps}*TB)"
        )
    else:
        video = source.filter("trim", end_frame=max(1, round(seconds * fps)))
    streams = [video.filter("scale", width, height).filter("setsar", "1")]
    if audio:
        tone = ffmpeg.input(f"sine=frequency=440:duration={seconds}", format="lavfi")
        streams.append(tone)
    options: dict[str, object] = {"c:v": codec}
    if codec in ("libx264", "mpeg4"):
        options["pix_fmt"] = "yuv420p"
    if vfr:
        # Without B-frames the MP4 sample durations themselves vary, not only the pts.
        options.update({"fps_mode": "vfr", "bf": 0})
    if container:
        options["format"] = container
    cmd = (
        ffmpeg.output(*streams, str(path), **options)
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .overwrite_output()
        .compile(cmd=ffmpeg_binary())
    )
    _check_made(cmd, path)
    return path


def make_test_frames(folder: StrPath, *, n: int = 20, size: tuple[int, int] = (224, 224)) -> Path:
    """Write ``n`` synthetic JPEG frames named 0001.jpg, 0002.jpg, ... into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    frames = (
        ffmpeg.input(f"testsrc2=size={_even(width)}x{_even(height)}:rate=25", format="lavfi")
        .filter("trim", end_frame=n)
        .filter("scale", width, height)
    )
    cmd = (
        ffmpeg.output(frames, str(folder / "%04d.jpg"), start_number=1, **{"q:v": 3})
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .overwrite_output()
        .compile(cmd=ffmpeg_binary())
    )
    _check_made(cmd, folder)
    return folder
