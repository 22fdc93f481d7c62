"""Candidate clip generation on synthetic videos made from a real face photo.

No database and no Django: run with ``-p no:django --noconftest``. The videos are written here with
ffmpeg from numpy frames: the astronaut photo shipped by scikit-image, moved and scaled over noisy
backgrounds, hard cuts between scenes, and a stretch without any face.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from clips.candidates import (
    Box,
    CandidateClip,
    CandidateError,
    FaceDetector,
    HaarFaceDetector,
    Shot,
    VideoInfo,
    VideoScan,
    cut_clips,
    plan_clips,
    scan_video,
    shots_from_scan,
    shots_from_scores,
    split_span,
    track_faces,
)
from tests.clips.candidate_reference import (
    GenerationResult,
    cut_clip,
    detect_shots,
    generate_candidates,
)

W, H, FPS = 640, 360, 25
# The astronaut's head, and inside it the face box (eyebrows to chin) the frontal-face detector is
# trained to report; both in pixels of the 512x512 photo.
HEAD = (140, 30, 170, 170)
FACE_IN_HEAD = (37, 36, 95, 95)
CUTS = (60, 140)  # shot 0: one face, shot 1: two faces, shot 2: coffee cup, no face
FRAMES = 190


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


ASTRONAUT = _bgr(data.astronaut())
COFFEE = cv2.resize(_bgr(data.coffee()), (W, H), interpolation=cv2.INTER_AREA)


def write_video(path: Path, frames, *, size=(W, H), gop: int = 12) -> Path:
    """Pipe BGR frames into ffmpeg as rawvideo and encode an H.264 MP4 at 25 fps."""
    proc = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
         "-s", f"{size[0]}x{size[1]}", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
         "-preset", "ultrafast", "-crf", "18", "-g", str(gop), "-pix_fmt", "yuv420p", str(path)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def paste_face(frame: np.ndarray, x: int, y: int, scale: float, *, mirror: bool = False) -> Box:
    """Draw the astronaut's head at (x, y) scaled by ``scale``; return where its face box is."""
    hx, hy, hw, hh = HEAD
    head = ASTRONAUT[hy : hy + hh, hx : hx + hw]
    fx, fy, fw, fh = FACE_IN_HEAD
    if mirror:
        head = head[:, ::-1]
        fx = hw - fx - fw
    side = int(round(hw * scale))
    frame[y : y + side, x : x + side] = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    return Box(x + round(fx * scale), y + round(fy * scale), round(fw * scale), round(fh * scale))


def noisy(background: np.ndarray, rng: np.random.Generator, amount: int = 15) -> np.ndarray:
    noise = rng.integers(-amount, amount + 1, background.shape, dtype=np.int16)
    return np.clip(background.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def three_shot_video(path: Path, *, seed: int) -> tuple[Path, dict[int, list[Box]]]:
    """Write a 190-frame video with three shots; return it and the face boxes of every frame."""
    rng = np.random.default_rng(seed)
    grey = np.full((H, W, 3), 110, np.uint8)
    green = np.zeros((H, W, 3), np.uint8)
    green[:] = (60, 120, 40)
    truth: dict[int, list[Box]] = {}

    def frames():
        for i in range(FRAMES):
            if i < CUTS[0]:  # one face moving right and down while growing
                t = i / (CUTS[0] - 1)
                frame = noisy(grey, rng, 20)
                truth[i] = [paste_face(frame, int(60 + 200 * t), int(40 + 40 * t), 0.8 + 0.4 * t)]
            elif i < CUTS[1]:  # two faces drifting towards each other
                t = (i - CUTS[0]) / (CUTS[1] - CUTS[0] - 1)
                frame = noisy(green, rng)
                truth[i] = [
                    paste_face(frame, int(40 + 30 * t), 150, 1.0),
                    paste_face(frame, int(420 - 30 * t), 100, 0.9, mirror=True),
                ]
            else:
                frame = noisy(COFFEE, rng, 10)
                truth[i] = []
            yield frame

    return write_video(path, frames()), truth


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A 190-frame video with three shots, and the face boxes drawn in every frame."""
    return three_shot_video(tmp_path_factory.mktemp("scenes") / "scenes.mp4", seed=7)


@pytest.fixture(scope="module")
def result(scenes) -> GenerationResult:
    return generate_candidates(scenes[0])


@pytest.fixture(scope="module")
def faceless(tmp_path_factory) -> Path:
    """Coffee cup, hard cut, then noise: no face anywhere."""
    rng = np.random.default_rng(3)
    noise_bg = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    frames = [noisy(COFFEE, rng, 10) for _ in range(40)] + [noisy(noise_bg, rng) for _ in range(40)]
    return write_video(tmp_path_factory.mktemp("faceless") / "faceless.mp4", frames)


# ------------------------------------------------------------------ end to end


def test_hard_cuts_are_found_within_two_frames(scenes, result):
    assert [s.start_frame for s in result.shots] == [0, *[pytest.approx(c, abs=2) for c in CUTS]]
    assert result.shots[-1].end_frame == FRAMES == result.scan.frame_count
    for shot, following in zip(result.shots, result.shots[1:], strict=False):
        assert shot.end_frame == following.start_frame
    assert result.shots[1].start_s == pytest.approx(result.shots[1].start_frame / FPS)
    # The stand-alone stage agrees with the shared decode.
    assert detect_shots(scenes[0]) == result.shots


def test_one_track_per_face_per_shot(scenes, result):
    _, truth = scenes
    per_shot = [[t for t in result.tracks if t.shot_index == s.index] for s in result.shots]
    assert [len(tracks) for tracks in per_shot] == [1, 2, 0]
    for track in result.tracks:
        shot = result.shots[track.shot_index]
        assert shot.start_frame <= track.start_frame < track.end_frame <= shot.end_frame
        assert len(track.boxes) == track.frame_count
        assert track.frame_count >= 0.9 * shot.frame_count  # followed through (almost) all the shot
        # The track follows one drawn face closely all along.
        overlaps = [
            max(box.iou(face) for face in truth[frame])
            for frame, box in zip(
                range(track.start_frame, track.end_frame), track.boxes, strict=True
            )
        ]
        assert min(overlaps) > 0.5


def test_candidates_respect_length_limits_and_split_long_tracks(result):
    assert result.explanation is None
    assert all(8 <= c.frame_count <= 47 for c in result.candidates)
    for track in result.tracks:
        pieces = sorted(
            (c for c in result.candidates if c.track_id == track.track_id),
            key=lambda c: c.start_frame,
        )
        assert len(pieces) == -(-track.frame_count // 47)  # ceil: as few pieces as fit the limit
        assert len(pieces) >= 2  # every track here is longer than 47 frames
        assert pieces[0].start_frame == track.start_frame
        assert pieces[-1].end_frame == track.end_frame
        for a, b in zip(pieces, pieces[1:], strict=False):
            assert a.end_frame == b.start_frame
        sizes = [p.frame_count for p in pieces]
        assert max(sizes) - min(sizes) <= 1  # even split
    for clip in result.candidates:
        assert clip.start_s == pytest.approx(clip.start_frame / FPS)
        assert clip.end_s == pytest.approx(clip.end_frame / FPS)
        assert len(clip.boxes) == clip.frame_count


def test_square_crops_contain_the_drawn_face_in_every_frame(scenes, result):
    _, truth = scenes
    for clip in result.candidates:
        crop = clip.crop
        assert crop.w == crop.h
        assert 0 <= crop.x and crop.x2 <= W and 0 <= crop.y and crop.y2 <= H
        for frame, box in zip(range(clip.start_frame, clip.end_frame), clip.boxes, strict=True):
            face = max(truth[frame], key=box.iou)  # the face this clip follows
            assert crop.contains(face), (clip.key, frame, crop, face)
            # ... and no other drawn face is inside the crop
            assert all(not crop.contains(other) for other in truth[frame] if other != face)


def test_a_video_without_faces_gives_no_candidate_and_says_why(faceless):
    outcome = generate_candidates(faceless)
    assert len(outcome.shots) == 2
    assert outcome.tracks == [] and outcome.candidates == []
    assert outcome.explanation == "no face found in 2 shots"


def test_cut_clip_writes_a_224_h264_clip_with_the_planned_frames(scenes, result, tmp_path):
    clip = max(result.candidates, key=lambda c: c.start_frame)  # starts mid-video, off a keyframe
    out = tmp_path / "clip.mp4"
    cut_clip(scenes[0], clip, out, fps=result.info.fps)
    streams = ffprobe(out)["streams"]
    assert [s["codec_type"] for s in streams] == ["video"]  # no audio
    video = streams[0]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (224, 224)
    assert int(video["nb_read_frames"]) == clip.frame_count
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_cut_clip_starts_on_the_exact_frame(tmp_path):
    """Each frame shows its own number in binary; a clip cut from frame 37 must start with 37."""

    def stamped(n: int) -> np.ndarray:
        frame = np.full((96, 160, 3), 128, np.uint8)
        for bit in range(8):
            frame[:16, bit * 16 : bit * 16 + 16] = 255 if n >> bit & 1 else 0
        return frame

    video = write_video(tmp_path / "stamped.mp4", map(stamped, range(80)), size=(160, 96), gop=25)
    clip = CandidateClip(
        track_id=0, piece=0, shot_index=0, start_frame=37, end_frame=49,
        start_s=37 / FPS, end_s=49 / FPS, crop=Box(0, 0, 96, 96),
        boxes=(Box(0, 0, 10, 10),) * 12, out_size=112,
    )  # fmt: skip
    out = tmp_path / "stamped-clip.mp4"
    cut_clip(video, clip, out, fps=FPS)
    raw = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(out), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 112, 112)
    scale = 112 / 96
    numbers = [
        sum(1 << bit for bit in range(6) if f[int(8 * scale), int((bit * 16 + 8) * scale)] > 128)
        for f in frames
    ]
    # Bits 0-5 lie inside the 96 px crop; frame numbers below 64 need no more.
    assert numbers == list(range(37, 49))


def test_cut_clips_cuts_many_exact_clips_with_one_decode_per_run(tmp_path):
    """Clips close together share a decode, a far one gets its own; each starts on its frame."""

    def stamped(n: int) -> np.ndarray:
        frame = np.full((144, 160, 3), 128, np.uint8)
        for bit in range(8):
            frame[:16, bit * 16 : bit * 16 + 16] = 255 if n >> bit & 1 else 0
        return frame

    video = write_video(tmp_path / "stamped.mp4", map(stamped, range(250)), size=(160, 144), gop=25)

    def clip(start: int, end: int, track: int) -> CandidateClip:
        return CandidateClip(
            track_id=track, piece=0, shot_index=0, start_frame=start, end_frame=end,
            start_s=start / FPS, end_s=end / FPS, crop=Box(0, 0, 128, 128),
            boxes=(Box(0, 0, 10, 10),) * (end - start), out_size=128,
        )  # fmt: skip

    # Two overlapping clips, one right after, one 6 s later (its own seek), one past the end.
    wanted = [clip(37, 49, 0), clip(40, 60, 1), clip(60, 75, 2), clip(220, 240, 3)]
    late = clip(245, 260, 4)
    out = tmp_path / "out"
    out.mkdir()
    results = list(cut_clips(video, [*wanted, late], out, fps=FPS, max_gap_s=2.0))
    assert [(c.key, path is not None) for c, path, _ in results] == [
        (c.key, True) for c in wanted
    ] + [(late.key, False)]
    assert "5 frames instead of 15" in results[-1][2]
    for c, path, _ in results[:-1]:
        raw = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
             "gray", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        frames = np.frombuffer(raw, np.uint8).reshape(-1, 128, 128)
        numbers = [sum(1 << bit for bit in range(8) if f[8, bit * 16 + 8] > 128) for f in frames]
        assert numbers == list(range(c.start_frame, c.end_frame)), c.key
        assert path.name == f"{c.key}.mp4"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{c.key}.mp4" for c in wanted)


def test_cut_clips_gives_what_cut_clip_gives(scenes, result, tmp_path):
    clip = max(result.candidates, key=lambda c: c.start_frame)
    one = tmp_path / "one.mp4"
    cut_clip(scenes[0], clip, one, fps=FPS)
    ((_, many, reason),) = cut_clips(scenes[0], [clip], tmp_path, fps=FPS)
    assert reason is None

    def pixels(path: Path) -> np.ndarray:
        raw = subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt",
             "gray", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        return np.frombuffer(raw, np.uint8).reshape(-1, 224, 224).astype(np.int16)

    a, b = pixels(one), pixels(many)
    assert a.shape == b.shape == (clip.frame_count, 224, 224)
    assert np.abs(a - b).mean() < 1.0  # the same frames, crop and scale


def test_cut_clip_failure_leaves_nothing(tmp_path, result):
    out = tmp_path / "clip.mp4"
    with pytest.raises(CandidateError):
        cut_clip(tmp_path / "missing.mp4", result.candidates[0], out, fps=FPS)
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_file_is_reported(tmp_path):
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"not a video at all")
    with pytest.raises(CandidateError):
        scan_video(bogus, detector=HaarFaceDetector())


# ------------------------------------------------------------------ stages and JSON


def test_stage_outputs_survive_json_and_a_retry_from_any_stage(result):
    stored = json.loads(json.dumps(result.to_dict()))
    again = GenerationResult.from_dict(stored)
    assert again.shots == result.shots
    assert again.tracks == result.tracks
    assert again.candidates == result.candidates
    assert again.scan.detections == result.scan.detections
    # Retrying from the stored scan (no decoding) reproduces every later stage.
    scan = VideoScan.from_dict(stored["scan"])
    shots = shots_from_scan(scan)
    tracks = track_faces(scan, shots)
    assert (shots, tracks, plan_clips(tracks)) == (result.shots, result.tracks, result.candidates)
    without_scan = GenerationResult.from_dict(
        json.loads(json.dumps(result.to_dict(include_scan=False)))
    )
    assert without_scan.candidates == result.candidates


class CentreSquare:
    """A stand-in detector: 'finds' one fixed box in every frame and records what it was given."""

    def __init__(self, *, wants_color: bool = False) -> None:
        self.wants_color = wants_color
        self.shapes: set[tuple[int, ...]] = set()

    def detect(self, frame: np.ndarray) -> list[Box]:
        self.shapes.add(frame.shape)
        return [Box(140, 70, 40, 40)]


@pytest.mark.parametrize("color", [False, True])
def test_another_detector_can_be_dropped_in(faceless, color):
    detector = CentreSquare(wants_color=color)
    assert isinstance(detector, FaceDetector)
    outcome = generate_candidates(faceless, detector=detector, sample_every=2)
    assert detector.shapes == {(180, 320, 3) if color else (180, 320)}
    # Analysis frames are 320 px wide: boxes come back in 640x360 source pixels.
    assert {b for boxes in outcome.scan.detections.values() for b in boxes} == {
        Box(280, 140, 80, 80)
    }
    assert [t.shot_index for t in outcome.tracks] == [0, 1]
    assert [(t.start_frame, t.end_frame) for t in outcome.tracks] == [(0, 40), (40, 80)]
    assert [c.frame_count for c in outcome.candidates] == [40, 40]
    assert all(c.crop.contains(Box(280, 140, 80, 80)) for c in outcome.candidates)
    assert outcome.params["detector"] == "CentreSquare"


# ------------------------------------------------------------------ units


def test_split_span_keeps_every_piece_within_limits():
    assert split_span(7, 8, 47) == []
    assert split_span(8, 8, 47) == [(0, 8)]
    assert split_span(48, 8, 47) == [(0, 24), (24, 24)]
    assert split_span(95, 8, 47) == [(0, 32), (32, 32), (64, 31)]
    for length in range(8, 600):
        pieces = split_span(length, 8, 47)
        assert all(8 <= size <= 47 for _, size in pieces)
        assert sum(size for _, size in pieces) == length
        assert [offset for offset, _ in pieces] == [
            sum(size for _, size in pieces[:k]) for k in range(len(pieces))
        ]
    # Limits too close for an even split: whole max-size pieces from the middle.
    assert split_span(50, 30, 40) == [(5, 40)]
    with pytest.raises(ValueError):
        split_span(10, 9, 8)


def test_cut_scores_ignore_steady_motion_and_merge_flashes():
    steady = [0.0] + [0.08] * 99  # fast pan: every frame differs a lot, none more than the others
    assert len(shots_from_scores(steady, 25.0)) == 1
    cut = [0.0] + [0.01] * 49 + [0.3] + [0.01] * 49
    assert [s.start_frame for s in shots_from_scores(cut, 25.0)] == [0, 50]
    flash = [0.0] + [0.01] * 49 + [0.2, 0.25] + [0.01] * 48  # two spikes in a row: one boundary
    assert [s.start_frame for s in shots_from_scores(flash, 25.0)] == [0, 51]
    assert shots_from_scores([], 25.0) == []


def _scan(detections: dict[int, list[Box]], frames: int = 60) -> VideoScan:
    return VideoScan(
        info=VideoInfo(640, 360, 25.0),
        frame_count=frames,
        sample_every=3,
        analysis_width=320,
        cut_scores=[0.0] * frames,
        detections=detections,
    )


def _shots(*bounds: int) -> list[Shot]:
    return [
        Shot(k, a, b, a / 25, b / 25)
        for k, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


def test_tracking_bridges_short_gaps_and_splits_on_jumps_losses_and_cuts():
    face = Box(100, 100, 80, 80)
    moved = Box(400, 100, 80, 80)
    samples = range(0, 60, 3)
    # A gap of two sampled frames is bridged, with boxes interpolated through it.
    gap = {f: ([] if f in (12, 15) else [Box(100 + f, 100, 80, 80)]) for f in samples}
    (track,) = track_faces(_scan(gap), _shots(0, 60))
    assert (track.start_frame, track.end_frame, track.hits) == (0, 60, 18)
    assert track.boxes[13].x == pytest.approx(113, abs=1)
    # A longer loss ends the track; the face found again starts a new one.
    lost = {f: ([] if 12 <= f <= 24 else [face]) for f in samples}
    assert [(t.start_frame, t.end_frame) for t in track_faces(_scan(lost), _shots(0, 60))] == [
        (0, 11),
        (26, 60),
    ]
    # A jump across the frame is a new track even with no missed sample.
    jump = {f: [face if f < 30 else moved] for f in samples}
    assert len(track_faces(_scan(jump), _shots(0, 60))) == 2
    # A shot boundary ends every track, even if the face stays put.
    still = {f: [face] for f in samples}
    tracks = track_faces(_scan(still), _shots(0, 31, 60))
    assert [(t.shot_index, t.start_frame, t.end_frame) for t in tracks] == [(0, 0, 31), (1, 31, 60)]
    # A detection on a single sampled frame is noise.
    assert track_faces(_scan({0: [face], 3: [], 6: []}), _shots(0, 60)) == []


def test_candidates_need_no_system_ffmpeg_or_ffprobe(scenes, result, tmp_path, monkeypatch):
    """The embedded default: only the ffmpeg that imageio-ffmpeg ships, and no ffprobe at all."""
    from clips import ffmpeg as ff

    bundled = ff.ffmpeg_binary()
    # An MKV has no header the Python reader knows: probing goes through ffmpeg's log.
    mkv = tmp_path / "scenes.mkv"
    subprocess.run(
        [bundled, "-nostdin", "-loglevel", "error", "-i", str(scenes[0]), "-c", "copy", str(mkv)],
        check=True,
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert ff.ffprobe_binary() is None
    assert "imageio_ffmpeg" in ff.ffmpeg_binary()
    for video in (scenes[0], mkv):
        outcome = generate_candidates(video)
        assert outcome.info == result.info
        # Another ffmpeg build scales a pixel differently: the same cuts, tracks and spans.
        frames = [(s.start_frame, s.end_frame) for s in outcome.shots]
        assert frames == [(s.start_frame, s.end_frame) for s in result.shots]
        spans = [(c.track_id, c.start_frame, c.end_frame) for c in outcome.candidates]
        assert spans == [(c.track_id, c.start_frame, c.end_frame) for c in result.candidates]
    out = tmp_path / "clip.mp4"
    cut_clip(mkv, result.candidates[0], out, fps=result.info.fps)
    assert out.stat().st_size > 0
