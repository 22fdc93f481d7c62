"""factory_boy factories for the domain models."""

import factory
from django.contrib.auth import get_user_model

from annotations.models import Campaign, Membership, Role, Task, Vote
from clips.models import Clip, MediaStatus, Scene


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    # The hand-made tests are written against the plain vote-share rule; tests of the
    # confidence rule (the model's default) ask for it.
    aggregation = Campaign.Aggregation.MAJORITY
    # With the majority rule, 3 and 5 votes is a rule the services refuse (rules.py); the tests
    # of disputed clips asking for a 4th and 5th vote were written for it, and a factory may
    # still build it.
    max_votes = 5
    # The hand-made tests hand out real clips from the first one; the qualification's own
    # tests ask for it.
    qualification_clips = 0


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    campaign = factory.SubFactory(CampaignFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class ClipFactory(factory.django.DjangoModelFactory):
    """A ready clip whose files are names only (enough for API tests that never play it)."""

    class Meta:
        model = Clip

    scene = factory.LazyFunction(lambda: Scene.objects.order_by("?").first())
    name = factory.Sequence(lambda n: f"clip-{n}.mp4")
    checksum = factory.Sequence(lambda n: f"{n:064x}")
    status = MediaStatus.READY
    video = factory.Sequence(lambda n: f"clips/test-{n}.mp4")
    poster = factory.Sequence(lambda n: f"posters/test-{n}.jpg")
    duration_s = 1.2
    fps = 25.0
    frame_count = 30
    width = 224
    height = 224


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    campaign = factory.SubFactory(CampaignFactory)
    clip = factory.SubFactory(ClipFactory)
    votes_needed = factory.LazyAttribute(lambda o: o.campaign.votes_per_clip)


class VoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vote

    task = factory.SubFactory(TaskFactory)
    campaign = factory.LazyAttribute(lambda o: o.task.campaign)
    annotator = factory.SubFactory(UserFactory)
    answer = 3


class GoldTaskFactory(TaskFactory):
    """A gold clip: a reviewer's reference label, mixed into every annotator's stream."""

    is_gold = True
    gold_label = 3


def voted_task(campaign, answers, voters, **task_fields):
    """A task of ``campaign`` with one vote per answer (``voters[i]`` gives ``answers[i]``) and
    its consensus applied, as after the votes' workers ran."""
    from annotations.consensus import consensus_update

    task = TaskFactory(campaign=campaign, **task_fields)
    for user, answer in zip(voters, answers, strict=False):
        Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=int(answer))
    return consensus_update(task_id=task.pk)
