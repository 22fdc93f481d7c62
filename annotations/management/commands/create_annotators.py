"""Create annotator accounts in bulk, add them to a campaign, write their API tokens to a file."""

import csv
import json
import os

from django.core.management.base import BaseCommand, CommandError

from annotations.management.arguments import campaign_argument
from annotations.models import Role
from annotations.services import annotators_create
from labelstudio_ferv.errors import ValidationError


class Command(BaseCommand):
    help = (
        "Create accounts (or reuse existing ones), add them to a campaign and write "
        "username, token (and new passwords) to a file readable by its owner only."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="Campaign id or exact name.")
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--usernames", nargs="+", metavar="NAME", help="Accounts to create.")
        who.add_argument("--count", type=int, help="Create PREFIX001 ... PREFIXnnn.")
        parser.add_argument("--prefix", default="annotator", help="Name prefix with --count.")
        parser.add_argument("--role", choices=[r.value for r in Role], default=Role.ANNOTATOR.value)
        parser.add_argument(
            "--passwords",
            action="store_true",
            help="Give new accounts a random password (for browser login) and write it too; "
            "without it they can use the API token only.",
        )
        parser.add_argument(
            "--output", required=True, help="File to write; .json gives JSON, anything else CSV."
        )

    def handle(self, *args, **options):
        campaign = campaign_argument(options["campaign"])
        if options["count"] is not None:
            if not 1 <= options["count"] <= 100_000:
                raise CommandError("--count must be between 1 and 100000.")
            width = max(3, len(str(options["count"])))
            usernames = [
                f"{options['prefix']}{i:0{width}d}" for i in range(1, options["count"] + 1)
            ]
        else:
            usernames = options["usernames"]
        try:
            credentials = annotators_create(
                campaign=campaign,
                usernames=usernames,
                role=options["role"],
                with_passwords=options["passwords"],
            )
        except ValidationError as exc:
            raise CommandError(exc.message) from None
        path = options["output"]
        # Tokens are secrets: the file is created readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", newline="") as handle:
            if path.endswith(".json"):
                rows = [
                    {"username": c.username, "token": c.token, "password": c.password}
                    for c in credentials
                ]
                json.dump(rows, handle, indent=1)
            else:
                writer = csv.writer(handle)
                writer.writerow(["username", "token", "password"])
                for c in credentials:
                    writer.writerow([c.username, c.token, c.password or ""])
        self.stdout.write(
            f"{len(credentials)} accounts in campaign {campaign.name!r}; tokens written to {path}"
        )
