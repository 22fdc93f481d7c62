"""Create a small demo campaign with generated clips and demo logins (development only)."""

import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.models import Campaign, Role, Task
from annotations.services import campaign_add_clips, campaign_create, membership_set
from clips import synthetic
from clips.models import Scene
from clips.services import clip_create

DEMO_PASSWORD = "demo-password"  # noqa: S105 - development logins, refused when DEBUG is off
DEMO_CAMPAIGN = "Demo campaign"
# (scene folder, lavfi pattern, seconds): a few short clips across scenarios.
DEMO_CLIPS = [
    ("Conflict", "testsrc2", 1.2),
    ("School", "smptebars", 0.8),
    ("Speech", "mandelbrot", 1.6),
    ("Interview", "testsrc2", 1.0),
    ("Business", "smptebars", 1.4),
    ("War", "mandelbrot", 0.6),
]


class Command(BaseCommand):
    help = "Load a small demo campaign (idempotent). Refused when DEBUG is off."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates known passwords; it runs only with DEBUG on.")
        users = self._users()
        campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
        if campaign is None:
            campaign = campaign_create(
                name=DEMO_CAMPAIGN,
                description="Generated clips to try the workspace with.",
                created_by=users["admin"],
            )
        for username, user in users.items():
            role = {"admin": Role.ADMIN, "reviewer": Role.REVIEWER}.get(username, Role.ANNOTATOR)
            membership_set(campaign=campaign, user=user, role=role)
        # A demo clip is known by its name in the demo campaign, not by its file's checksum:
        # another ffmpeg build encodes the same clip to other bytes, and the demo must not grow
        # by six clips each time the system ffmpeg changes.
        present = set(
            Task.objects.filter(campaign=campaign, clip__name__startswith="demo-").values_list(
                "clip__name", flat=True
            )
        )
        clips = []
        with tempfile.TemporaryDirectory(prefix="lsf-demo-") as tmp:
            for index, (folder, pattern, seconds) in enumerate(DEMO_CLIPS):
                path = Path(tmp) / f"demo-{index}.mp4"
                if path.name in present:
                    continue
                synthetic.make_test_video(path, seconds=seconds, pattern=pattern)
                with transaction.atomic():
                    clip, _ = clip_create(
                        path=path, scene=Scene.objects.get(folder=folder), name=path.name
                    )
                clips.append(clip)
        added = campaign_add_clips(campaign=campaign, clips=clips) if clips else 0
        total = len(present) + added
        self.stdout.write(f"demo campaign ready: {total} clips ({added} new)")

    def _users(self) -> dict:
        User = get_user_model()
        users = {}
        for username in ["admin", "reviewer", "annotator1", "annotator2", "annotator3"]:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_staff = user.is_superuser = username == "admin"
                user.save()
            users[username] = user
        return users
