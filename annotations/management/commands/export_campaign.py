"""Export a campaign from the shell, through the same service, job and writer as the API."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from annotations import exports
from annotations.management.arguments import campaign_argument
from annotations.models import ExportJob, Role
from labelstudio_ferv.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Export a campaign's labels CSV, votes CSV or FERV39k release archive. The job runs in "
        "this process (no worker needed) and is recorded like one started from the API."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("campaign", help="Campaign id or name.")
        parser.add_argument("--kind", choices=ExportJob.Kind.values, default="labels")
        parser.add_argument("--output", "-o", type=Path, help="Also copy the file here.")
        parser.add_argument("--test-share", type=float, help="release: test share (0.2).")
        parser.add_argument("--seed", type=int, help="release: split seed (0).")
        parser.add_argument(
            "--no-media", action="store_true", help="release: the two CSV files only."
        )
        parser.add_argument(
            "--include-gold", action="store_true", help="labels, release: add gold clips."
        )
        parser.add_argument(
            "--usernames", action="store_true", help="votes: usernames, not pseudonyms."
        )
        parser.add_argument("--user", help="Record the job as created by this username.")

    def handle(self, *args, **options) -> None:
        campaign = campaign_argument(options["campaign"])
        kind = options["kind"]
        params: dict = {}
        if kind == ExportJob.Kind.RELEASE:
            for name in ("test_share", "seed"):
                if options[name] is not None:
                    params[name] = options[name]
            params["include_media"] = not options["no_media"]
        if kind in (ExportJob.Kind.LABELS, ExportJob.Kind.RELEASE) and options["include_gold"]:
            params["include_gold"] = True
        if kind == ExportJob.Kind.VOTES and options["usernames"]:
            params["pseudonymise"] = False
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            # Whoever runs the shell holds the admin's rights.
            job = exports.export_create(
                campaign=campaign, kind=kind, params=params, created_by=user, role=Role.ADMIN,
                enqueue=False,
            )  # fmt: skip
        except ApplicationError as exc:
            raise CommandError(exc.message)
        self.stdout.write(f"export {job.pk}: {kind} of {campaign.name} ...")
        result = exports.export_run(job_id=job.pk)
        job.refresh_from_db()
        if job.status != ExportJob.Status.DONE:
            raise CommandError(f"export {job.pk} {job.status}: {job.error or result}")
        self.stdout.write(f"{job.rows_done} rows -> {job.file.name}")
        if options["output"]:
            with (
                default_storage.open(job.file.name, "rb") as src,
                options["output"].open("wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
            self.stdout.write(f"copied to {options['output']}")
