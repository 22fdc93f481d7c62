"""What the media side tells the rest of the application, without knowing who listens.

``clips`` knows nothing of campaigns: the candidate pipeline announces the clips it cut, and
``annotations`` (connected in its AppConfig.ready) adds them to the campaign the video feeds.
Receivers run in the sender's transaction: a clip and its task are written together.
"""

from django.dispatch import Signal

# Sent with ``source_video_id`` (int) and ``clip_ids`` (list of int): clips cut from a source
# video (or found again when a rerun plans them again). Sent again for the same clips on a rerun;
# receivers must be idempotent.
source_clips_cut = Signal()
