"""Sniff, probe, transcode and fingerprint clip media (ffmpeg itself is run by ffmpeg.py).

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
import hashlib
import os
import re
import struct
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from .ffmpeg import (
    TRANSIENT_ERRNOS,
    CorruptMediaError,
    FramesTooLargeError,
    MediaError,
    ProbeResult,
    StrPath,
    TransientMediaError,
    check_frame_size,
    failure_reason,
    ffmpeg_binary,
    probe_video,
    run,
)
from .lazy import lazy_module

# ffmpeg-python (about 7 MB with the `future` package it loads) is needed only when media is
# transcoded: web processes serving annotators never load it.
ffmpeg = lazy_module("ffmpeg")

__all__ = [
    "CorruptMediaError",
    "FramesTooLargeError",
    "MediaError",
    "ProbeResult",
    "TransientMediaError",
    "dir_sha256",
    "ffmpeg_binary",
    "file_sha256",
    "probe",
    "sniff_kind",
    "transcode",
]

# One thread per ffmpeg: many clips are converted in parallel, and for 224x224 frames thread
# start-up and synchronisation cost more than they save.
_THREADS = 1
_CRF = 20
_POSTER_QUALITY = 3  # mjpeg -q:v, 2 (best) .. 31
_CHUNK = 1 << 20

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
    return probe_video(path, timeout_s)[0]


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
    max_pixels: int | None = None,
    scratch: StrPath | None = None,
    tick: Callable[[], None] | None = None,
) -> ProbeResult:
    """Convert a video file or frame folder to a web-ready MP4 plus a mid-clip poster JPEG.

    The MP4 is H.264/yuv420p at a constant frame rate (``fps``, else the input's average rate),
    without audio, with the moov atom first, and scaled so its longest side is at most
    ``max_side`` with even dimensions. Both files appear atomically or not at all. Return the
    properties of the written MP4.

    Frames over ``max_pixels`` are refused (FramesTooLargeError) before any is decoded; the
    decoder is held to the limit too, for frames that lie about their size. Temporary files go
    under ``scratch`` (default: the system's temporary folder). ``tick`` is called about every
    second while ffmpeg runs.

    Raise CorruptMediaError for bad input and TransientMediaError for failures that may pass.
    """
    try:
        return _transcode(
            Path(src),
            Path(dst_mp4),
            Path(dst_poster_jpg),
            max_side,
            fps,
            frames_fps,
            timeout_s,
            _Limits(max_pixels=max_pixels, scratch=scratch, tick=tick),
        )
    except OSError as exc:
        if exc.errno in TRANSIENT_ERRNOS:
            raise TransientMediaError(f"could not write the clip: {exc.strerror}") from exc
        raise


@dataclass(frozen=True)
class _Limits:
    max_pixels: int | None = None
    scratch: StrPath | None = None
    tick: Callable[[], None] | None = None


def _transcode(
    src: Path,
    dst_mp4: Path,
    dst_poster: Path,
    max_side: int,
    fps: float | None,
    frames_fps: float,
    timeout_s: float,
    limits: _Limits,
) -> ProbeResult:
    kind = sniff_kind(src)
    # A decoder option: ffmpeg refuses any frame over the limit, whatever the headers said.
    guard = {"max_pixels": limits.max_pixels} if limits.max_pixels else {}
    if kind == "image":
        raise CorruptMediaError("not a video file: it is a single still image")
    with contextlib.ExitStack() as cleanup:
        if kind == "frames":
            frames = _require_frames(src)
            info, sar = _probe_frames(frames, frames_fps), Fraction(1)
            check_frame_size(info.width, info.height, limits.max_pixels)
            work = Path(
                cleanup.enter_context(
                    tempfile.TemporaryDirectory(prefix="ferv-frames-", dir=limits.scratch)
                )
            )
            source = ffmpeg.input(
                _link_frames(frames, work),
                format="image2",
                framerate=_ratio(Fraction(frames_fps).limit_denominator(1001)),
                start_number=0,
                threads=_THREADS,
                **guard,
            )
        else:
            info, sar = probe_video(src, timeout_s)
            check_frame_size(info.width, info.height, limits.max_pixels)
            source = ffmpeg.input(str(src), threads=_THREADS, **guard)

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
        proc = run(cmd, timeout_s, tick=limits.tick)
        # The decoder skips a refused frame and goes on: a clip missing frames is no clip.
        if limits.max_pixels and "exceeds specified max pixel count" in proc.stderr:
            raise FramesTooLargeError(
                "a frame is larger than the limit of "
                f"{limits.max_pixels / 1e6:.1f} megapixels per frame"
            )
        if proc.returncode != 0:
            raise CorruptMediaError(
                f"ffmpeg could not convert the file: {failure_reason(proc.stderr, src)}"
            )
        counts = re.findall(r"^frame=(\d+)$", proc.stdout, re.MULTILINE)
        if counts:
            frame_count = int(counts[-1])
        else:  # an ffmpeg without -progress output: measure the result instead
            frame_count = probe_video(tmp_mp4, timeout_s)[0].frame_count
        if frame_count == 0 or tmp_mp4.stat().st_size == 0:
            raise CorruptMediaError("ffmpeg could not decode any frame of the file")
        if tmp_poster.stat().st_size == 0:
            # The clip had fewer frames than its header promised: take the first one instead.
            cmd = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            cmd += ["-i", str(tmp_mp4), "-frames:v", "1", "-q:v", str(_POSTER_QUALITY)]
            cmd += ["-update", "1", "-f", "image2", str(tmp_poster)]
            if run(cmd, timeout_s).returncode != 0 or tmp_poster.stat().st_size == 0:
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
