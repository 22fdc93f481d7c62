"""Trust in the browser (issue 14): a newcomer's qualification with the right answer after each
clip, a failed one paused with the reason and no player, a reviewer reinstating them from the
review page, the blind audit of trusted clips with its measured precision, and the collusion
and fatigue signals with their evidence.

What a person sees is asserted (visible elements and their text); what they did is checked in
the database. Screenshots go where the other browser tests save theirs.
"""

from __future__ import annotations

import random
import re

import pytest

from annotations import consensus, statistics
from annotations.models import (
    AnnotatorPause,
    AuditAnswer,
    CampaignStatistics,
    Membership,
    Role,
    Task,
    Vote,
)
from labelstudio_ferv.expressions import Answer
from tests.conftest import wait_for
from tests.factories import GoldTaskFactory, MembershipFactory, TaskFactory, UserFactory
from tests.frontend import test_browser as tb
from tests.frontend.test_browser import (
    log_in,
    no_sideways_scroll,
    real_clip,
    shown_assignment,
    visible_videos,
)

# The browser tests' fixtures: the app under gunicorn, Chromium, playable clips, screenshots.
browser, server, media_files, screenshots = tb.browser, tb.server, tb.media_files, tb.screenshots

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


def new_page(browser, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def shot(page, screenshots, name: str) -> None:
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def feedback_after(page, answered: int) -> str:
    """Wait for the qualification strip to count ``answered`` answers; return its text."""
    page.wait_for_function(
        "(n) => document.getElementById('qual-progress').textContent.includes(`: ${n} of `) || "
        "document.getElementById('qual-progress').textContent.includes(`${n} right`)",
        arg=answered,
    )
    return page.text_content("#qualification")


def test_a_newcomer_qualifies_with_feedback_is_paused_on_failing_and_reinstated(
    browser, server, media_files, screenshots, campaign, alice, rita
):
    campaign.qualification_clips = 4
    campaign.gold_share = 0.1
    campaign.save()
    for i in range(12):
        GoldTaskFactory(campaign=campaign, clip=real_clip(media_files, i))  # Happy
    for i in range(4):
        TaskFactory(campaign=campaign, clip=real_clip(media_files, i))

    annotator = new_page(browser, LAPTOP)
    log_in(annotator, server, "alice")
    annotator.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    # Before the first answer, the page says what the first clips are.
    annotator.wait_for_selector("#qualification:visible")
    strip = annotator.text_content("#qualification")
    assert "0 of 4 qualification clips answered" in strip
    assert "known answer" in strip and annotator.is_hidden("#feedback")

    # Three wrong answers (Angry; the clips are Happy): the right answer after each.
    previous = None
    for n in (1, 2, 3):
        previous = shown_assignment(annotator, previous)
        annotator.keyboard.press("1")
        strip = feedback_after(annotator, n)
        assert annotator.is_visible("#feedback")
        feedback = annotator.text_content("#feedback")
        assert feedback == "✗ Not quite. The clip you just answered was Happy, not Angry."
        assert f"Qualification: {n} of 4 qualification clips answered, 0 right." in strip
        if n == 2:
            shot(annotator, screenshots, "trust-qualification-feedback")
    phone = new_page(browser, PHONE)
    log_in(phone, server, "alice")
    phone.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    phone.wait_for_selector("#qualification:visible")
    assert "3 of 4 qualification clips answered, 0 right" in phone.text_content("#qualification")
    shown_assignment(phone)
    shot(phone, screenshots, "trust-qualification-phone")
    phone.context.close()

    # The fourth wrong answer fails the qualification: paused, told why, no player.
    previous = shown_assignment(annotator, previous)
    annotator.keyboard.press("1")
    annotator.wait_for_function(
        "document.getElementById('app').dataset.blocked === 'annotator_paused'"
    )
    wait_for(lambda: Vote.objects.filter(annotator=alice).count() == 4)
    assert annotator.is_visible("#state")
    state = annotator.text_content("#state")
    assert state.startswith("Paused")
    assert "0 of your 4 qualification clips were answered right" in state
    assert "A reviewer will look at your answers" in state
    assert annotator.is_hidden("#qualification")  # the message alone says how it went
    assert visible_videos(annotator) == []
    assert annotator.is_hidden("#answers") and annotator.is_hidden(".controls")
    assert annotator.is_visible("#check-again") and annotator.is_hidden("#message")
    shot(annotator, screenshots, "trust-paused")
    # Asking again while paused changes nothing.
    with annotator.expect_response(lambda r: r.url.endswith("/next/?ahead=1")) as asked:
        annotator.click("#check-again")
    assert asked.value.status == 403
    annotator.wait_for_selector("#state:has-text('Last checked')")
    assert annotator.get_attribute("#app", "data-blocked") == "annotator_paused"
    assert visible_videos(annotator) == []

    # A reviewer sees the pause on the review page and reinstates alice.
    reviewer = new_page(browser, LAPTOP)
    log_in(reviewer, server, "rita")
    reviewer.goto(f"{server.url}/campaigns/{campaign.pk}/review/")
    row = reviewer.locator("#paused tr[data-username=alice]")
    row.wait_for()
    assert "0 of your 4 qualification clips" in row.text_content()
    assert reviewer.get_by_role("link", name="1 paused annotator").is_visible()
    reviewer.locator("#paused-section").scroll_into_view_if_needed()
    shot(reviewer, screenshots, "trust-review-paused")
    reviewer.get_by_role("button", name="Reinstate alice").click()
    reviewer.wait_for_selector("#none-paused:visible")
    assert "alice was reinstated" in reviewer.text_content("#confirm")
    assert reviewer.get_by_role("link", name="No annotator paused").is_visible()
    wait_for(lambda: Membership.objects.get(campaign=campaign, user=alice).paused_at is None)
    actions = list(
        AnnotatorPause.objects.filter(campaign=campaign, annotator=alice)
        .order_by("id")
        .values_list("action", "by__username")
    )
    assert actions == [("pause", None), ("reinstate", "rita")]

    # Alice asks again: clips come, the qualification starts afresh, and she passes it.
    annotator.click("#check-again")
    previous = shown_assignment(annotator)
    assert annotator.get_attribute("#app", "data-blocked") == ""
    assert "0 of 4 qualification clips answered" in annotator.text_content("#qualification")
    for n in (1, 2, 3, 4):
        if n > 1:
            previous = shown_assignment(annotator, previous)
        annotator.keyboard.press("4")  # Happy
        strip = feedback_after(annotator, n)
        assert (
            annotator.text_content("#feedback") == "✓ Right. The clip you just answered was Happy."
        )
    assert "Qualification passed: 4 of 4 right." in strip
    assert "real clips" in strip
    assert annotator.get_attribute("#qualification", "data-state") == "qualified"
    shot(annotator, screenshots, "trust-qualification-passed")
    wait_for(lambda: Membership.objects.get(campaign=campaign, user=alice).qualified_at)
    # Real work: she answers until a real (not gold) clip has her vote.
    for _ in range(3):
        previous = shown_assignment(annotator, previous)
        annotator.keyboard.press("5")
        if Vote.objects.filter(annotator=alice, task__is_gold=False).exists():
            break
        annotator.wait_for_selector("#pending", state="hidden")
    wait_for(lambda: Vote.objects.filter(annotator=alice, task__is_gold=False).exists())


def crowd_with_signals(campaign, media_files) -> None:
    """90 clips voted by 8 annotators: crowd-0 and crowd-1 share a wrong answer on every third
    clip, crowd-2 tires halfway; then the consensus and the statistics, as the workers do."""
    campaign.votes_per_clip = 3
    campaign.max_votes = 9
    campaign.audit_share = 1.0  # every trusted clip is in the audit sample
    campaign.save()
    rng = random.Random(7)
    users = [UserFactory(username=f"crowd-{i}") for i in range(8)]
    for user in users:
        MembershipFactory(campaign=campaign, user=user, role=Role.ANNOTATOR)
    colluders, tiring = users[:2], users[2]
    for n in range(90):
        task = TaskFactory(campaign=campaign, clip=real_clip(media_files, n))
        true = rng.randrange(7)
        shared_wrong = (true + 1 + n % 6) % 7
        for user in users:
            if user in colluders and n % 3 == 0:
                answer = shared_wrong
            elif user is tiring:
                answer = true if n < 45 else rng.choice([c for c in range(7) if c != true])
            else:
                answer = true if rng.random() < 0.8 else rng.randrange(7)
            Vote.objects.create(task=task, campaign=campaign, annotator=user, answer=answer)
    consensus.campaign_recompute(campaign_id=campaign.pk)
    statistics.statistics_refresh(campaign_id=campaign.pk)


def precision_text(page) -> str:
    return page.text_content("#audit-precision-live")


def test_a_reviewer_audits_trusted_clips_blind_and_sees_the_signals(
    browser, server, media_files, screenshots, campaign, rita
):
    crowd_with_signals(campaign, media_files)
    trusted = list(Task.objects.filter(campaign=campaign, status="trusted").order_by("id"))
    assert len(trusted) > 2

    page = new_page(browser, LAPTOP)
    log_in(page, server, "rita")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/review/")

    # The signals, with their evidence.
    page.wait_for_selector("#signals-collusion tr[data-pair]")
    pair = page.text_content("#signals-collusion tbody")
    assert "crowd-0 and crowd-1" in pair and "flagged" in pair
    assert page.locator("#signals-collusion tbody tr").count() == 1
    tired = page.locator("#signals-fatigue tr[data-annotator=crowd-2]")
    assert tired.is_visible()
    cells = tired.locator("td").all_text_contents()
    stored = CampaignStatistics.objects.get(campaign=campaign).data["signals"]["fatigue"]
    (evidence,) = [r for r in stored if r["annotator"] == "crowd-2"]
    assert cells[1] == str(evidence["checked_votes"])  # the votes checked against a reference
    first_half, second_half = (int(c.rstrip("%")) for c in cells[2:4])
    assert first_half > 90 and second_half < 50
    assert cells[4].count("→") == 3  # four quarters
    assert page.get_by_role("link", name="2 collusion or fatigue signals").is_visible()

    # The blind audit: nothing audited yet; the reviewer starts it.
    page.wait_for_selector("#audit-start:visible")
    assert "No trusted clip has been audited yet" in page.text_content("#precision")
    page.locator("#signals-section").scroll_into_view_if_needed()
    shot(page, screenshots, "trust-review-signals")
    page.click("#audit-start")
    page.wait_for_function(
        "document.getElementById('app').dataset.mode === 'audit' && "
        "document.getElementById('audit-video').readyState >= 2"
    )
    assert page.is_hidden(".review-main") and page.is_visible("#audit-mode")
    assert page.is_hidden("#audit-start")  # one way in, and it is taken
    shown = visible_videos(page)
    assert len(shown) == 1 and shown[0]["clip"] == str(trusted[0].pk)
    # Blind: nothing on screen names the votes or the label.
    side = page.text_content("#audit-mode")
    assert "vote" not in side.replace("votes and its label are hidden", "")
    assert page.locator("#audit-answers button").count() == 7
    shot(page, screenshots, "trust-audit")

    # The first clip gets its trusted label (a match), the second a different class.
    first, second = trusted[0], trusted[1]
    page.keyboard.press(str(first.label + 1))
    page.wait_for_function(
        "(t) => document.getElementById('app').dataset.auditTask === String(t)", arg=second.pk
    )
    page.wait_for_selector("#audit-precision-live:has-text('1 of 1 audited')")
    text = precision_text(page)
    assert "Measured precision: 100%" in text
    assert re.search(r"95% interval \d+% to 100%", text), text
    wrong = (second.label + 1) % 7
    page.get_by_role("button", name=f"{Answer(wrong).label} (key {wrong + 1})").click()
    page.wait_for_selector("#audit-precision-live:has-text('1 of 2 audited')")
    assert "Measured precision: 50%" in precision_text(page)
    assert "Saved: your answer" in page.text_content("#confirm")
    shot(page, screenshots, "trust-audit-precision")
    answers = dict(AuditAnswer.objects.filter(campaign=campaign).values_list("task", "answer"))
    assert answers == {first.pk: first.label, second.pk: wrong}

    # Back to the review page: the section shows the same precision, by scenario too.
    page.keyboard.press("Escape")
    page.wait_for_selector(".review-main:visible")
    assert page.is_hidden("#audit-mode")
    assert "Measured precision: 50%" in page.text_content("#precision")
    assert page.locator("#precision-table tbody tr").count() >= 1

    # At phone width nothing scrolls sideways.
    phone = new_page(browser, PHONE)
    log_in(phone, server, "rita")
    phone.goto(f"{server.url}/campaigns/{campaign.pk}/review/")
    phone.wait_for_selector("#signals-fatigue tr[data-annotator=crowd-2]")
    phone.wait_for_selector("#precision-table")
    shot(phone, screenshots, "trust-review-phone")
