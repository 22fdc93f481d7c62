from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Campaigns, votes and labels"

    def ready(self) -> None:
        from clips.signals import source_clips_cut

        from .intake import source_clips_cut_received

        # Clips the candidate pipeline cuts become tasks of the campaign their video feeds.
        source_clips_cut.connect(source_clips_cut_received, dispatch_uid="annotations.intake")
