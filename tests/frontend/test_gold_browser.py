"""The gold set builder in headless Chromium: a reviewer labels a stratified sample with the
annotator workspace's keys, and each answer becomes the clip's gold label (audited)."""

from __future__ import annotations

import pytest

from annotations.models import AuditEntry, Task
from clips.models import Scene
from tests.conftest import wait_for
from tests.factories import TaskFactory
from tests.frontend import test_browser as tb
from tests.frontend.test_admin_browser import LAPTOP, PHONE, log_in, new_page, shot, shown_task
from tests.frontend.test_browser import real_clip

browser, server, media_files, screenshots = tb.browser, tb.server, tb.media_files, tb.screenshots

pytestmark = pytest.mark.browser


def test_a_reviewer_builds_the_gold_set_in_the_gold_workspace(
    browser, server, media_files, screenshots, campaign, rita
):
    first, second = Scene.objects.order_by("position")[:2]
    tasks = [
        TaskFactory(campaign=campaign, clip=real_clip(media_files, i), draw=i) for i in range(4)
    ]
    for task, scene in zip(tasks, (first, first, second, second), strict=True):
        task.clip.scene = scene
        task.clip.save(update_fields=["scene"])

    page = new_page(browser, LAPTOP)
    log_in(page, server, "rita")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/gold/")
    page.click("#gold-workspace")
    page.wait_for_url("**/gold/label/")
    one = shown_task(page)
    # The first two clips come from the two scenes (one stratum each, then round two).
    assert {Task.objects.get(pk=one).clip.scene_id} <= {first.pk, second.pk}
    assert "Gold clips: 0 · target 1" in page.text_content("#progress")
    shot(page, screenshots, "gold-workspace")
    page.keyboard.press("4")  # Happy
    two = shown_task(page, one)
    assert Task.objects.get(pk=two).clip.scene_id != Task.objects.get(pk=one).clip.scene_id
    wait_for(lambda: Task.objects.get(pk=one).gold_label == 3)
    page.keyboard.press("0")  # left out
    three = shown_task(page, two)
    page.keyboard.press("x")  # left out too
    four = shown_task(page, three)
    page.keyboard.press("3")  # Fear
    page.wait_for_selector("#state:has-text('No clip is left')")
    wait_for(lambda: Task.objects.get(pk=four).gold_label == 2)
    assert "by you here: 2" in page.text_content("#progress")

    # U brings the last gold clip back; another key changes its label, 0 takes it out.
    page.keyboard.press("u")
    page.wait_for_selector("#correction:has-text('as Fear')")
    assert page.get_attribute("#app", "data-task") == four
    page.keyboard.press("6")  # Sad
    # U at once, while the change is on its way: it is not lost, it waits for the save.
    page.keyboard.press("u")
    page.wait_for_selector("#correction:has-text('as Sad')")
    assert Task.objects.get(pk=four).gold_label == 5
    page.keyboard.press("0")
    wait_for(lambda: not Task.objects.get(pk=four).is_gold)

    gold = dict(
        Task.objects.filter(campaign=campaign, is_gold=True).values_list("pk", "gold_label")
    )
    assert gold == {int(one): 3}
    actions = list(
        AuditEntry.objects.filter(campaign=campaign, actor=rita)
        .order_by("id")
        .values_list("action", "details__label")
    )
    assert actions == [
        ("gold_set", "happy"), ("gold_set", "fear"), ("gold_set", "sad"), ("gold_retired", None),
    ]  # fmt: skip

    # On a phone: the player and the keys' buttons fit; a button labels the clip too.
    phone = new_page(browser, PHONE)
    log_in(phone, server, "rita")
    phone.goto(f"{server.url}/campaigns/{campaign.pk}/gold/label/")
    shown = shown_task(phone)
    shot(phone, screenshots, "gold-workspace-phone")
    phone.click("[aria-label='Gold: Surprise (key 7)']")
    wait_for(lambda: Task.objects.get(pk=shown).gold_label == 6)
