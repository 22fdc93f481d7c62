"""clips.media against real files made by ffmpeg: no Django, no database."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from clips import ffmpeg as ff
from clips import media, synthetic
from clips.media import CorruptMediaError, ProbeResult, TransientMediaError

FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(FFPROBE is None, reason="the checks need ffprobe")


# --------------------------------------------------------------------------- helpers


def ffprobe(path: Path, *args: str) -> dict:
    cmd = [FFPROBE, "-v", "error", "-of", "json", *args, str(path)]
    return json.loads(subprocess.run(cmd, capture_output=True, check=True, text=True).stdout)


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    cmd = [media.ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def gray_frames(path: Path, width: int, height: int) -> np.ndarray:
    """Decode a video or image to 8-bit gray frames, shape (frames, height, width)."""
    raw = ffmpeg("-i", str(path), "-f", "rawvideo", "-pix_fmt", "gray", "-")
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width)


def top_level_boxes(path: Path) -> list[bytes]:
    names = []
    with path.open("rb") as fh:
        while len(header := fh.read(8)) == 8:
            size, name = struct.unpack(">I4s", header)
            names.append(name)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            if size == 0:
                break
            fh.seek(size - 8, os.SEEK_CUR)
    return names


def make_gray_frames(folder: Path, names: list[str], side: int = 64) -> None:
    """Write one flat gray frame per name, brighter in the order given."""
    folder.mkdir(parents=True)
    levels = np.linspace(20, 235, len(names)).astype(np.uint8)
    raw = np.repeat(levels, side * side).tobytes()
    suffix = Path(names[0]).suffix
    size = f"{side}x{side}"
    pattern = str(folder / f"made-%d{suffix}")
    ffmpeg("-f", "rawvideo", "-pix_fmt", "gray", "-s", size, "-i", "-", pattern, stdin=raw)
    for index, name in enumerate(names, start=1):
        (folder / f"made-{index}{suffix}").rename(folder / name)


def assert_nothing_written(*paths: Path) -> None:
    for path in paths:
        assert not path.exists()
        # No temp files either: the destination folder holds nothing else.
        assert not path.parent.exists() or os.listdir(path.parent) == []


# --------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sources")
    return {
        "mp4": synthetic.make_test_video(root / "plain.mp4", seconds=1.5, audio=True),
        "avi": synthetic.make_test_video(
            root / "odd.avi", seconds=1.0, size=(225, 223), codec="mpeg4"
        ),
        "vfr": synthetic.make_test_video(root / "vfr.mp4", seconds=1.0, fps=30, vfr=True),
        "frames": synthetic.make_test_frames(root / "frames", n=20),
        "ts": synthetic.make_test_video(root / "clip.ts", seconds=0.6, pattern="smptebars"),
    }


# (frame count, frames per second, width, height) each input must become.
EXPECTED = {
    "mp4": (38, Fraction(25), 224, 224),
    "avi": (25, Fraction(25), 224, 222),
    # 20 frames: 10 at 30 fps, then 10 at 15 fps; the last lasts 1/30 s. Average: 600/29.
    "vfr": (20, Fraction(600, 29), 224, 224),
    "frames": (20, Fraction(25), 224, 224),
    "ts": (15, Fraction(25), 224, 224),
}


def test_vfr_input_really_has_variable_frame_rate(sources):
    stream = ffprobe(sources["vfr"], "-show_streams", "-select_streams", "v")["streams"][0]
    assert stream["r_frame_rate"] != stream["avg_frame_rate"]
    packets = ffprobe(sources["vfr"], "-show_packets", "-select_streams", "v")["packets"]
    assert len({p["duration"] for p in packets}) > 1


def test_odd_sized_avi_input_keeps_its_odd_size(sources):
    stream = ffprobe(sources["avi"], "-show_streams")["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("mpeg4", 225, 223)


# --------------------------------------------------------------------------- transcode


@pytest.mark.parametrize("kind", EXPECTED)
def test_transcode_writes_web_ready_cfr_mp4_and_poster(sources, tmp_path, kind):
    frames, rate, width, height = EXPECTED[kind]
    mp4, poster = tmp_path / "out" / "clip.mp4", tmp_path / "out" / "poster.jpg"

    result = media.transcode(sources[kind], mp4, poster)

    streams = ffprobe(mp4, "-show_streams", "-count_packets")["streams"]
    assert [s["codec_type"] for s in streams] == ["video"]  # no audio, even from the mp4
    video = streams[0]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (width, height)
    assert video["width"] % 2 == 0 and video["height"] % 2 == 0
    # Constant frame rate: nominal == average, and every frame lasts exactly as long.
    assert video["r_frame_rate"] == video["avg_frame_rate"]
    assert Fraction(video["avg_frame_rate"]) == rate
    packets = ffprobe(mp4, "-show_packets")["packets"]
    assert len({p["duration"] for p in packets}) == 1
    pts = sorted(int(p["pts"]) for p in packets)
    assert len({b - a for a, b in zip(pts, pts[1:], strict=False)}) == 1
    assert abs(int(video["nb_read_packets"]) - frames) <= 1
    assert abs(float(video["duration"]) - frames / rate) <= 1.5 / rate
    # Fast start: the index comes before the media data.
    boxes = top_level_boxes(mp4)
    assert boxes.index(b"moov") < boxes.index(b"mdat")

    # The returned probe describes the written file.
    assert result == ProbeResult(
        duration_s=pytest.approx(float(video["duration"]), abs=0.002),
        fps=pytest.approx(float(rate)),
        frame_count=int(video["nb_read_packets"]),
        width=width,
        height=height,
        codec="h264",
    )

    data = poster.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and data.endswith(b"\xff\xd9")
    picture = ffprobe(poster, "-show_streams")["streams"][0]
    assert (picture["codec_name"], picture["width"], picture["height"]) == ("mjpeg", width, height)
    assert sorted(os.listdir(mp4.parent)) == ["clip.mp4", "poster.jpg"]  # no temp files left


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_frame_folder_plays_in_natural_order_whatever_the_padding(tmp_path, suffix):
    # Natural order; plain sorting would put "0020" and "011" first.
    names = [f"{i}{suffix}" for i in range(1, 11)] + [f"011{suffix}", f"13{suffix}"]
    names.append(f"0020{suffix}")
    folder = tmp_path / "frames"
    make_gray_frames(folder, names)
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    result = media.transcode(folder, tmp_path / "c.mp4", tmp_path / "c.jpg", frames_fps=10)

    assert (result.frame_count, result.fps, result.width, result.height) == (13, 10.0, 64, 64)
    brightness = gray_frames(tmp_path / "c.mp4", 64, 64).mean(axis=(1, 2))
    assert len(brightness) == 13
    assert np.all(np.diff(brightness) > 5)
    # The poster is the middle frame.
    poster = gray_frames(tmp_path / "c.jpg", 64, 64).mean()
    assert int(np.argmin(abs(brightness - poster))) == 13 // 2


def test_frame_folder_mixing_jpeg_and_png_is_rejected(tmp_path):
    make_gray_frames(tmp_path / "f", ["1.jpg", "2.jpg"])
    make_gray_frames(tmp_path / "g", ["3.png"])
    shutil.move(tmp_path / "g" / "3.png", tmp_path / "f" / "3.png")
    with pytest.raises(CorruptMediaError, match="mixes JPEG and PNG"):
        media.transcode(tmp_path / "f", tmp_path / "o" / "c.mp4", tmp_path / "o" / "c.jpg")
    assert_nothing_written(tmp_path / "o" / "c.mp4", tmp_path / "o" / "c.jpg")


def test_transcode_shrinks_to_max_side_keeping_aspect_with_even_sides(tmp_path):
    source = synthetic.make_test_video(tmp_path / "wide.mp4", seconds=0.4, size=(640, 360))
    for max_side, expected in ((448, (448, 252)), (301, (300, 168)), (1000, (640, 360))):
        mp4 = tmp_path / f"{max_side}.mp4"
        result = media.transcode(source, mp4, tmp_path / f"{max_side}.jpg", max_side=max_side)
        video = ffprobe(mp4, "-show_streams")["streams"][0]
        assert (result.width, result.height) == (video["width"], video["height"]) == expected


def test_transcode_honours_requested_fps(sources, tmp_path):
    mp4 = tmp_path / "c.mp4"
    result = media.transcode(sources["mp4"], mp4, tmp_path / "c.jpg", fps=10)
    video = ffprobe(mp4, "-show_streams", "-count_packets")["streams"][0]
    assert video["r_frame_rate"] == video["avg_frame_rate"] == "10/1"
    assert result.fps == 10.0
    assert result.frame_count == int(video["nb_read_packets"]) == 15


def test_rotated_phone_video_comes_out_upright(tmp_path):
    plain = synthetic.make_test_video(tmp_path / "plain.mp4", seconds=0.4, size=(320, 240))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v", "rotate=90", str(rotated))
    side_data = ffprobe(rotated, "-show_streams")["streams"][0].get("side_data_list", [])
    if not any(abs(int(d.get("rotation", 0))) == 90 for d in side_data):
        pytest.skip("this ffmpeg cannot tag a rotation with -metadata")

    assert (media.probe(rotated).width, media.probe(rotated).height) == (240, 320)
    result = media.transcode(rotated, tmp_path / "c.mp4", tmp_path / "c.jpg")
    video = ffprobe(tmp_path / "c.mp4", "-show_streams")["streams"][0]
    assert (result.width, result.height) == (video["width"], video["height"]) == (240, 320)


# --------------------------------------------------------------------------- probe


@pytest.mark.parametrize("kind", ["mp4", "avi", "vfr", "ts"])
def test_probe_describes_video_files(sources, kind):
    result = media.probe(sources[kind])
    stream = ffprobe(sources[kind], "-show_streams", "-count_packets", "-select_streams", "V")
    stream = stream["streams"][0]
    assert result.frame_count == int(stream["nb_read_packets"])
    assert (result.width, result.height, result.codec) == (
        stream["width"],
        stream["height"],
        stream["codec_name"],
    )
    assert result.fps == pytest.approx(float(Fraction(stream["avg_frame_rate"])), rel=1e-3)
    assert result.duration_s == pytest.approx(result.frame_count / result.fps, rel=0.1)


def test_probe_describes_frame_folders(sources):
    assert media.probe(sources["frames"], frames_fps=10) == ProbeResult(
        duration_s=2.0, fps=10.0, frame_count=20, width=224, height=224, codec="mjpeg"
    )


@pytest.mark.parametrize("kind", ["mp4", "avi", "vfr", "ts"])
def test_probe_without_ffprobe_agrees(sources, monkeypatch, kind):
    expected = media.probe(sources[kind])
    monkeypatch.setattr(ff, "ffprobe_binary", lambda: None)
    # Skip the Python MP4 reader too, so ffmpeg's log is what gets parsed.
    monkeypatch.setattr(ff, "_probe_mp4", lambda path: None)
    result = media.probe(sources[kind])
    assert (result.frame_count, result.width, result.height, result.codec) == (
        expected.frame_count,
        expected.width,
        expected.height,
        expected.codec,
    )
    assert result.fps == pytest.approx(expected.fps, rel=0.01)  # the log rounds to 0.01
    assert result.duration_s == pytest.approx(expected.duration_s, abs=0.01)


def test_mp4_header_reader_agrees_with_ffprobe(sources, monkeypatch):
    if ff.ffprobe_binary() is None:
        pytest.skip("ffmpeg's log rounds what ffprobe would report exactly")
    fast = media.probe(sources["vfr"])
    monkeypatch.setattr(ff, "_probe_mp4", lambda path: None)
    assert media.probe(sources["vfr"]) == ProbeResult(
        duration_s=pytest.approx(fast.duration_s, abs=1e-5),
        fps=pytest.approx(fast.fps),
        frame_count=fast.frame_count,
        width=fast.width,
        height=fast.height,
        codec=fast.codec,
    )


def test_ffmpeg_binary_falls_back_to_imageio(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    binary = media.ffmpeg_binary()
    assert "imageio_ffmpeg" in binary and os.access(binary, os.X_OK)


# --------------------------------------------------------------------------- bad input


@pytest.fixture(params=["truncated", "truncated_faststart", "truncated_avi", "text", "garbage"])
def bad_input(request, sources, tmp_path) -> Path:
    path = tmp_path / "in" / "upload.mp4"
    path.parent.mkdir()
    if request.param == "truncated":  # moov at the end: it is cut off
        data = sources["mp4"].read_bytes()
        path.write_bytes(data[: len(data) * 3 // 10])
    elif request.param == "truncated_faststart":  # moov intact, most frames missing
        media.transcode(sources["mp4"], tmp_path / "in" / "fs.mp4", tmp_path / "in" / "fs.jpg")
        data = (tmp_path / "in" / "fs.mp4").read_bytes()
        path.write_bytes(data[: len(data) * 3 // 10])
    elif request.param == "truncated_avi":
        data = sources["avi"].read_bytes()
        path.write_bytes(data[: len(data) * 3 // 10])
    elif request.param == "text":
        path.write_text("these are my notes, not a video\n" * 20)
    else:  # an MP4 signature followed by noise
        path.write_bytes(b"\0\0\0\x18ftypisom\0\0\2\0isomiso2" + os.urandom(4000))
    return path


def test_bad_input_raises_corrupt_with_readable_reason_and_writes_nothing(bad_input, tmp_path):
    mp4, poster = tmp_path / "out" / "clip.mp4", tmp_path / "out" / "poster.jpg"
    with pytest.raises(CorruptMediaError) as caught:
        media.transcode(bad_input, mp4, poster)
    reason = caught.value.reason
    assert reason == str(caught.value)
    assert reason.startswith(("not a video file: ", "ffmpeg could not", "the file is truncated"))
    assert "0x" not in reason and "@" not in reason and str(tmp_path) not in reason
    assert_nothing_written(mp4, poster)
    with pytest.raises(CorruptMediaError):
        media.probe(bad_input)


def test_reasons_say_what_is_wrong(sources, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello\n" * 50)
    with pytest.raises(CorruptMediaError, match="^not a video file: "):
        media.probe(text)
    data = sources["mp4"].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 3 // 10])
    with pytest.raises(CorruptMediaError) as caught:
        media.probe(tmp_path / "cut.mp4")
    assert caught.value.reason == (
        "ffmpeg could not read the file: Invalid data found when processing input"
    )
    with pytest.raises(CorruptMediaError, match="single still image"):
        media.transcode(sources["frames"] / "0001.jpg", tmp_path / "a.mp4", tmp_path / "a.jpg")


def test_damaged_frame_fails_the_folder(sources, tmp_path):
    folder = tmp_path / "frames"
    shutil.copytree(sources["frames"], folder)
    (folder / "0005.jpg").write_text("oops")
    with pytest.raises(CorruptMediaError, match="0005.jpg"):
        media.transcode(folder, tmp_path / "o" / "c.mp4", tmp_path / "o" / "c.jpg")


# --------------------------------------------------------------------------- atomic writes


def fake_ffmpeg(tmp_path: Path, body: str) -> str:
    """Write a stand-in ffmpeg that first scribbles into every file it was told to write.

    Outputs go to tmp_path / "out"; whatever name they have there, a half-written file must
    not survive the failure.
    """
    script = tmp_path / "fake-ffmpeg"
    script.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do case "$arg" in {tmp_path}/out/*) echo half > "$arg";; esac; done\n'
        + body
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("kill -KILL $$\n", "stopped by signal SIGKILL"),
        ("kill -TERM $$\n", "stopped by signal SIGTERM"),
        ("echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 1\n", "space"),
        ("exit 255\n", "interrupted by a signal"),
    ],
)
def test_failure_that_may_pass_is_transient_and_leaves_no_file(
    sources, tmp_path, monkeypatch, body, reason
):
    monkeypatch.setattr(media, "ffmpeg_binary", lambda: fake_ffmpeg(tmp_path, body))
    mp4, poster = tmp_path / "out" / "clip.mp4", tmp_path / "out" / "poster.jpg"
    with pytest.raises(TransientMediaError, match=reason):
        media.transcode(sources["mp4"], mp4, poster)
    assert_nothing_written(mp4, poster)


def test_timeout_is_transient_and_leaves_no_file(sources, tmp_path, monkeypatch):
    monkeypatch.setattr(media, "ffmpeg_binary", lambda: fake_ffmpeg(tmp_path, "sleep 5\n"))
    mp4, poster = tmp_path / "out" / "clip.mp4", tmp_path / "out" / "poster.jpg"
    with pytest.raises(TransientMediaError, match="longer than 0.3 s"):
        media.transcode(sources["mp4"], mp4, poster, timeout_s=0.3)
    assert_nothing_written(mp4, poster)


def test_full_disk_while_preparing_is_transient(sources, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(media, "_reserve_temp", no_space)
    with pytest.raises(TransientMediaError, match="No space left"):
        media.transcode(sources["mp4"], tmp_path / "c.mp4", tmp_path / "c.jpg")


def test_failed_transcode_keeps_the_previous_output(tmp_path):
    mp4, poster = tmp_path / "clip.mp4", tmp_path / "poster.jpg"
    mp4.write_bytes(b"previous video")
    poster.write_bytes(b"previous poster")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypisom\0\0\2\0isomiso2" + b"\0" * 2000)
    with pytest.raises(CorruptMediaError):
        media.transcode(broken, mp4, poster)
    assert (mp4.read_bytes(), poster.read_bytes()) == (b"previous video", b"previous poster")
    assert sorted(os.listdir(tmp_path)) == ["broken.mp4", "clip.mp4", "poster.jpg"]


# --------------------------------------------------------------------------- sniffing


def test_sniff_kind_goes_by_content_not_name(sources, tmp_path):
    disguised = tmp_path / "holiday.txt"
    shutil.copy(sources["mp4"], disguised)
    assert media.sniff_kind(disguised) == "video"
    no_name = tmp_path / "original"
    shutil.copy(sources["avi"], no_name)
    assert media.sniff_kind(no_name) == "video"
    assert media.sniff_kind(sources["ts"]) == "video"
    assert media.sniff_kind(sources["frames"]) == "frames"
    assert media.sniff_kind(sources["frames"] / "0001.jpg") == "image"
    png = tmp_path / "still.jpg"  # a PNG, whatever the name says
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    assert media.sniff_kind(png) == "image"


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("c.mkv", {}),
        ("c.webm", {"codec": "libvpx"}),
        ("c.mov", {}),
        ("c.flv", {}),
        ("c.mpg", {"codec": "mpeg2video"}),
        ("c.ogv", {"codec": "libtheora"}),
        ("c.m2ts", {"container": "mpegts"}),
    ],
)
def test_sniff_kind_knows_common_containers(tmp_path, name, options):
    path = synthetic.make_test_video(tmp_path / name, seconds=0.2, size=(64, 64), **options)
    renamed = path.rename(tmp_path / "upload.bin")
    assert media.sniff_kind(renamed) == "video"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"hello world\n" * 20, "matches no known video format"),
        (b"GIF89a" + b"\0" * 100, "matches no known video format"),
        (b"\0\0\0\x1cftypheic" + b"\0" * 100, "matches no known video format"),
    ],
)
def test_sniff_kind_rejects_other_files(tmp_path, content, reason):
    path = tmp_path / "upload.mp4"
    path.write_bytes(content)
    with pytest.raises(CorruptMediaError, match=f"^not a video file: .*{reason}"):
        media.sniff_kind(path)


def test_sniff_kind_rejects_folders_without_frames(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    for folder in (tmp_path / "empty", tmp_path / "notes"):
        with pytest.raises(CorruptMediaError, match="no JPEG or PNG frames"):
            media.sniff_kind(folder)


# --------------------------------------------------------------------------- checksums


def test_file_sha256_streams_paths_and_file_objects(sources):
    data = sources["mp4"].read_bytes()
    expected = hashlib.sha256(data).hexdigest()
    assert media.file_sha256(sources["mp4"]) == expected
    assert media.file_sha256(str(sources["mp4"])) == expected
    buffer = io.BytesIO(data)
    buffer.seek(5)
    assert media.file_sha256(buffer) == expected
    assert buffer.tell() == 5  # the caller can go on reading where it was
    with sources["mp4"].open("rb") as fh:
        assert media.file_sha256(fh) == expected


def test_dir_sha256_is_stable_and_depends_on_frame_names_and_bytes(sources, tmp_path):
    original = media.dir_sha256(sources["frames"])
    assert media.dir_sha256(sources["frames"]) == original
    copy = tmp_path / "elsewhere"
    shutil.copytree(sources["frames"], copy)
    assert media.dir_sha256(copy) == original  # where it lives does not matter
    (copy / "notes.txt").write_text("not a frame")
    (copy / ".DS_Store").write_bytes(b"junk")
    assert media.dir_sha256(copy) == original  # neither do files that are not frames

    (copy / "0020.jpg").rename(copy / "0021.jpg")
    renamed = media.dir_sha256(copy)
    assert renamed != original
    frame = copy / "0003.jpg"
    frame.write_bytes(frame.read_bytes()[:-1] + b"\0")
    assert media.dir_sha256(copy) not in (original, renamed)
    assert len(original) == 64 and int(original, 16) >= 0
