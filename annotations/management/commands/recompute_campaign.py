"""Recompute every clip's consensus of a campaign, and its statistics, in bulk."""

import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from annotations import consensus, statistics
from annotations.management.arguments import campaign_argument


class Command(BaseCommand):
    help = "Recompute the consensus of every clip of a campaign, then its agreement statistics."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or name")
        parser.add_argument("--no-statistics", action="store_true")

    def handle(self, *args, **options):
        campaign = campaign_argument(options["campaign"])
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
