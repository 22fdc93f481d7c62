"""Synthetic media: short test videos and frame folders made by ffmpeg from its lavfi sources.

Used by the demo data (``seed_demo``), the tests and the benchmarks; never by ingestion. Kept
out of media.py, which handles real media only.
"""

from __future__ import annotations

from pathlib import Path

import ffmpeg

from .ffmpeg import MediaError, StrPath, failure_reason, ffmpeg_binary, run


def _check_made(cmd: list[str], target: Path) -> None:
    proc = run(cmd, timeout_s=120)
    if proc.returncode != 0:
        raise MediaError(f"ffmpeg could not make {target.name}: {failure_reason(proc.stderr)}")


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
