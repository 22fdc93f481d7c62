"""Cut raw videos into candidate face clips: shots, face detection, tracking, clip planning.

This is step 2 of building a FERV39k-style data set (see CANDIDATES.md beside this package).
The package imports no Django: the Celery wiring (``clips/pipeline.py``) calls the stages one by
one and stores each stage's ``to_dict()`` output as JSON, so a video that failed at one stage
can be retried from it.

Stages (each a plain function in its own module; the output of one is the input of the next):

1. ``scan.scan_video`` -> ``VideoScan``: the only stage that decodes video. One ffmpeg run
   writes downscaled frames into a pipe; every frame gets a cut score, and every
   ``sample_every``-th frame goes through the face detector.
2. ``shots.shots_from_scan`` -> ``list[Shot]``: hard cuts from the cut scores.
3. ``tracks.track_faces`` -> ``list[Track]``: links the detections inside each shot into face
   tracks.
4. ``plan.plan_clips`` -> ``list[CandidateClip]``: 8..47-frame pieces of tracks with a square
   crop; ``plan.explain`` says why a video gave none.
5. ``cut.cut_clips``: writes candidates as 224x224 H.264 MP4s with one decode per run of nearby
   candidates.

All frame numbers count decoded frames from 0 (end frames are exclusive) and all boxes are
``[x, y, w, h]`` in pixels of the source video as ffmpeg decodes it (after autorotation). Times
are ``frame / fps``: sources are assumed to have a constant frame rate.
"""

from .cut import cut_clips
from .plan import CandidateClip, crop_for_boxes, explain, plan_clips, split_span
from .scan import (
    DEFAULT_ANALYSIS_WIDTH,
    DEFAULT_SAMPLE_EVERY,
    Box,
    CandidateError,
    FaceDetector,
    HaarFaceDetector,
    VideoInfo,
    VideoScan,
    iter_frames,
    probe_video,
    scan_video,
)
from .shots import (
    DEFAULT_CUT_RATIO,
    DEFAULT_CUT_THRESHOLD,
    DEFAULT_CUT_WINDOW,
    DEFAULT_MIN_SHOT_FRAMES,
    Shot,
    shots_from_scan,
    shots_from_scores,
)
from .tracks import Track, track_faces

__all__ = [
    "DEFAULT_ANALYSIS_WIDTH",
    "DEFAULT_CUT_RATIO",
    "DEFAULT_CUT_THRESHOLD",
    "DEFAULT_CUT_WINDOW",
    "DEFAULT_MIN_SHOT_FRAMES",
    "DEFAULT_SAMPLE_EVERY",
    "Box",
    "CandidateClip",
    "CandidateError",
    "FaceDetector",
    "HaarFaceDetector",
    "Shot",
    "Track",
    "VideoInfo",
    "VideoScan",
    "crop_for_boxes",
    "cut_clips",
    "explain",
    "iter_frames",
    "plan_clips",
    "probe_video",
    "scan_video",
    "shots_from_scan",
    "shots_from_scores",
    "split_span",
    "track_faces",
]
