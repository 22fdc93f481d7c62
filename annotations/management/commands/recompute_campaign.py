"""Recompute every clip's consensus of a campaign, and its statistics, in bulk."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations import consensus, statistics
from annotations.models import Campaign


class Command(BaseCommand):
    help = "Recompute the consensus of every clip of a campaign, then its agreement statistics."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or name")
        parser.add_argument("--no-statistics", action="store_true")

    def handle(self, *args, **options):
        value = options["campaign"]
        campaign = (
            Campaign.objects.filter(pk=int(value)).first()
            if value.isdigit()
            else Campaign.objects.filter(name=value).first()
        )
        if campaign is None:
            raise CommandError(f"no campaign {value!r}")
        steps = ["loading votes", "aggregating", "writing"]
        bar = tqdm(total=len(steps) + 1, unit="step", disable=None, file=self.stderr._out)

        def progress(step: str) -> None:
            bar.set_description(step)
            bar.update(1)

        started = time.perf_counter()
        changed = consensus.campaign_recompute(campaign_id=campaign.pk, progress=progress)
        recompute_s = time.perf_counter() - started
        if not options["no_statistics"]:
            bar.set_description("statistics")
            statistics.statistics_refresh(campaign_id=campaign.pk)
        bar.update(1)
        bar.close()
        self.stdout.write(f"{changed} clips changed; consensus recomputed in {recompute_s:.2f} s")
