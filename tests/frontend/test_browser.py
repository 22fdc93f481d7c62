"""The browser pages in headless Chromium against the app under gunicorn on loopback.

Everything the pages show and do goes through the REST API; these tests check it in the
database, where a user's work ends up.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

from annotations.models import GoldBatch, Task, Vote
from clips.synthetic import make_test_video
from labelstudio_ferv.expressions import Answer
from tests.conftest import ServerProcess, wait_for
from tests.factories import ClipFactory, TaskFactory, UserFactory, voted_task

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update",
]  # fmt: skip
PATTERNS = ("testsrc2", "smptebars", "mandelbrot", "rgbtestsrc")
# Keys 1-7 are the classes in FERV39k order, 0 is PASS.
KEY_ANSWER = {str(i + 1): Answer(i) for i in range(7)} | {"0": Answer.PASS}


@pytest.fixture(scope="module")
def media_files() -> list[tuple[str, str]]:
    """Real, playable clips (H.264 MP4 + JPEG poster) in MEDIA_ROOT, as the server serves them."""
    folder = Path(settings.MEDIA_ROOT) / "browser-tests"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, pattern in enumerate(PATTERNS):
        video = folder / f"clip-{i}.mp4"
        poster = folder / f"clip-{i}.jpg"
        if not video.exists():
            make_test_video(video, seconds=1.0, size=(320, 240), pattern=pattern)
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-frames:v", "1",
                 str(poster)],
                check=True,
            )  # fmt: skip
        files.append((f"browser-tests/{video.name}", f"browser-tests/{poster.name}"))
    return files


def real_clip(media_files, n: int):
    video, poster = media_files[n % len(media_files)]
    return ClipFactory(
        video=video, poster=poster, duration_s=1.0, fps=25.0, frame_count=25, width=320, height=240
    )


@pytest.fixture
def server(live_db):
    proc = ServerProcess(SERVE_MEDIA="1", CELERY_TASK_ALWAYS_EAGER="1").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls in between (and
    # the database flush after each test) are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def log_in(page, server, username: str) -> None:
    page.goto(server.url + "/login/")
    page.locator("#id_username").focus()  # autofocus may land after the load event
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("pw-for-tests")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/")


def shown_assignment(page, other_than: str | None = None) -> str:
    """Wait until the workspace shows a live clip (not ``other_than``) and return its assignment."""
    page.wait_for_function(
        """(prev) => {
            const app = document.getElementById('app');
            const v = document.getElementById('video');
            return app.dataset.mode === 'answering' && app.dataset.assignment &&
                   app.dataset.assignment !== prev && v.readyState >= 2;
        }""",
        arg=other_than,
    )
    return page.get_attribute("#app", "data-assignment")


def ahead_ready(page) -> str:
    """Wait until the clip held ahead is buffered in the hidden player; return its assignment."""
    page.wait_for_function(
        "document.getElementById('app').dataset.ahead && "
        "document.getElementById('app').dataset.aheadReady === '1'"
    )
    return page.get_attribute("#app", "data-ahead")


def shown_at_once(page) -> tuple[str, int]:
    """Right after a key press: the assignment on screen and its video's readyState."""
    return tuple(
        page.evaluate(
            "[document.getElementById('app').dataset.assignment, "
            "document.getElementById('video').readyState]"
        )
    )


def campaign_tasks(campaign, media_files, n: int) -> None:
    for i in range(n):
        TaskFactory(campaign=campaign, clip=real_clip(media_files, i))


def test_an_annotator_answers_ten_clips_with_the_keyboard_and_corrects_one(
    server, page, campaign, alice, media_files
):
    campaign.gold_share = 0
    campaign.save()
    campaign_tasks(campaign, media_files, 12)
    log_in(page, server, "alice")
    link = page.get_by_role("link", name="Annotate")
    assert link.count() == 1
    assert page.get_by_role("link", name="Review queue").count() == 0
    page.goto(server.url + link.get_attribute("href"))

    keys = ["4", "1", "5", "0", "7", "2", "3", "6", "5", "4"]
    given: dict[int, Answer] = {}
    previous = None
    for i, key in enumerate(keys):
        assignment = shown_assignment(page, previous)
        if i == 0:
            assert page.evaluate("document.getElementById('video').muted") is True
            page.keyboard.press("?")
            page.wait_for_selector("#help:not([hidden])")
            page.keyboard.press("Escape")
            page.wait_for_selector("#help", state="hidden")
        if i == 7:
            # Reloading loses nothing: the same live clip comes back.
            page.reload()
            assert shown_assignment(page) == assignment
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "workspace.png"))
        ahead = ahead_ready(page)
        page.keyboard.press(key)
        # The clip held ahead was preloaded: it is on screen with its frames at once.
        now, ready = shown_at_once(page)
        assert now == ahead and ready >= 2
        given[int(assignment)] = KEY_ANSWER[key]
        previous = assignment
        if i == 4:
            # Undo once the answer is stored: it comes back; a different key corrects it.
            shown_assignment(page, previous)
            page.wait_for_selector("#pending", state="hidden")
            page.keyboard.press("u")
            page.wait_for_function(
                "(a) => document.getElementById('app').dataset.mode === 'correcting' && "
                "document.getElementById('app').dataset.assignment === a",
                arg=assignment,
            )
            page.keyboard.press("6")
            given[int(assignment)] = Answer.SAD
            corrected = int(assignment)

    page.wait_for_selector("#pending", state="hidden")
    wait_for(lambda: Vote.objects.filter(annotator=alice).count() == 10)
    time.sleep(0.3)
    votes = {v.assignment_id: Answer(v.answer) for v in Vote.objects.filter(annotator=alice)}
    assert votes == given
    assert votes[corrected] == Answer.SAD
    assert "Answered today: 10" in page.text_content("#progress")


CONTRAST = """(selector) => [...document.querySelectorAll(selector)].map((el) => {
    const rgb = (c) => c.match(/[0-9.]+/g).slice(0, 3).map(Number);
    const lum = (c) => {
        const [r, g, b] = rgb(c).map((v) => {
            v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    let bgEl = el;
    let bg = getComputedStyle(bgEl).backgroundColor;
    while (bg === "rgba(0, 0, 0, 0)" && bgEl.parentElement) {
        bgEl = bgEl.parentElement;
        bg = getComputedStyle(bgEl).backgroundColor;
    }
    const [a, b] = [lum(getComputedStyle(el).color), lum(bg)].sort((x, y) => y - x);
    const box = el.getBoundingClientRect();
    return {name: el.getAttribute("aria-label") || el.textContent.trim(),
            ratio: (a + 0.05) / (b + 0.05), right: box.right, bottom: box.bottom};
})"""


@pytest.mark.parametrize("size", [(1366, 768), (768, 1024)], ids=["laptop", "tablet"])
def test_the_workspace_fits_laptop_and_tablet_widths_with_readable_named_buttons(
    browser, server, campaign, alice, media_files, size
):
    campaign_tasks(campaign, media_files, 3)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, server, "alice")
        page.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
        shown_assignment(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= size[0]  # no sideways scrolling
        answers = page.evaluate(CONTRAST, "#answers button")
        controls = page.evaluate(CONTRAST, ".controls button")
        assert (len(answers), len(controls)) == (8, 8)
        for button in answers + controls:
            assert button["name"], button
            assert button["ratio"] >= 4.5, button  # WCAG AA for normal text
            assert button["right"] <= size[0], button
        # The eight answers are on the first screen, without scrolling.
        assert max(b["bottom"] for b in answers) <= size[1]
        assert (answers[0]["name"], answers[-1]["name"]) == ("Angry (key 1)", "PASS (key 0)")
    finally:
        context.close()


def test_answers_given_while_the_server_is_down_are_stored_once_it_is_back(
    server, page, campaign, alice, media_files
):
    campaign.gold_share = 0
    campaign.save()
    campaign_tasks(campaign, media_files, 8)
    log_in(page, server, "alice")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    given: dict[int, Answer] = {}
    previous = None
    for key in ["1", "2"]:
        previous = shown_assignment(page, previous)
        page.keyboard.press(key)
        given[int(previous)] = KEY_ANSWER[key]
    offline = shown_assignment(page, previous)
    ahead = ahead_ready(page)

    server.stop()
    page.keyboard.press("3")
    # The clip held ahead is there to work on, with the server down.
    now, ready = shown_at_once(page)
    assert now == ahead and ready >= 2
    page.wait_for_selector("#pending:not([hidden])")
    assert "1 answer waiting to be saved" in page.text_content("#pending")
    time.sleep(1.5)  # a few retries fail meanwhile
    # Changing one's mind offline works on the kept answer, still one answer to store.
    page.keyboard.press("u")
    page.wait_for_function(
        "(a) => document.getElementById('app').dataset.assignment === a", arg=offline
    )
    page.keyboard.press("5")
    given[int(offline)] = Answer.NEUTRAL
    assert shown_at_once(page)[0] == ahead
    page.keyboard.press("6")
    given[int(ahead)] = Answer.SAD
    # Nothing more is held: the page says it waits for the server, and keeps both answers.
    page.wait_for_function("document.getElementById('state').textContent.includes('server')")
    assert "2 answers waiting to be saved" in page.text_content("#pending")
    assert Vote.objects.filter(annotator=alice).count() == 2
    time.sleep(1.0)
    server.start()

    previous = shown_assignment(page, ahead)
    page.wait_for_selector("#pending", state="hidden")
    page.keyboard.press("7")
    given[int(previous)] = Answer.SURPRISE
    page.wait_for_selector("#pending", state="hidden")
    wait_for(lambda: Vote.objects.filter(annotator=alice).count() == 5)
    time.sleep(0.5)
    votes = list(Vote.objects.filter(annotator=alice))
    assert len(votes) == 5
    assert {v.assignment_id: Answer(v.answer) for v in votes} == given


def test_a_reviewer_settles_a_disputed_clip_and_the_dashboard_shows_it(
    server, page, campaign, rita, media_files
):
    voters = [UserFactory(username=f"voter{i}") for i in range(5)]
    f, su, n = Answer.FEAR, Answer.SURPRISE, Answer.NEUTRAL
    disputed = voted_task(campaign, [f, su, f, su, n], voters, clip=real_clip(media_files, 0))
    other = voted_task(campaign, [n, su, n, su, f], voters, clip=real_clip(media_files, 1))
    assert disputed.status == other.status == "disputed"
    log_in(page, server, "rita")
    assert page.get_by_role("link", name="Review queue").count() == 1
    page.goto(f"{server.url}/campaigns/{campaign.pk}/review/")
    page.wait_for_function(
        "(t) => document.getElementById('app').dataset.task === String(t)", arg=disputed.pk
    )
    page.wait_for_selector("#voters li")
    assert page.locator("#voters li").count() == 5
    page.wait_for_function("document.getElementById('video').readyState >= 2")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "review.png"), full_page=True)

    page.keyboard.press("3")  # fear
    wait_for(lambda: Task.objects.get(pk=disputed.pk).status == "adjudicated")
    assert Task.objects.get(pk=disputed.pk).label == int(Answer.FEAR)
    # The next item is loaded after a decision.
    page.wait_for_function(
        "(t) => document.getElementById('app').dataset.task === String(t)", arg=other.pk
    )

    page.goto(f"{server.url}/campaigns/{campaign.pk}/dashboard/")
    page.wait_for_selector("#progress [data-status=adjudicated]")
    assert page.text_content("#progress [data-status=adjudicated] .n") == "1"
    assert page.text_content("#progress [data-status=disputed] .n") == "1"
    page.wait_for_selector("#balance .bar")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # Improper batches are decided with keys too: A accepts the first, R twice rejects it.
    first, second = (
        GoldBatch.objects.create(
            campaign=campaign, annotator=voters[i], number=1, size=100, gold_total=5,
            gold_correct=3, verdict="improper", review="pending",
        )
        for i in (0, 1)
    )  # fmt: skip
    page.goto(f"{server.url}/campaigns/{campaign.pk}/review/")
    selected = "(b) => document.getElementById('app').dataset.batch === b"
    page.wait_for_function(selected, arg=str(first.pk))
    page.keyboard.press("a")
    page.wait_for_function(selected, arg=str(second.pk))
    page.keyboard.press("r")
    page.wait_for_selector("#message:has-text('Press R again')")
    assert GoldBatch.objects.get(pk=second.pk).review == "pending"  # one press asks first
    page.keyboard.press("r")
    page.wait_for_function("document.getElementById('app').dataset.batch === ''")
    decided = {b.pk: (b.review, b.reviewed_by_id) for b in GoldBatch.objects.all()}
    assert decided == {first.pk: ("accepted", rita.pk), second.pk: ("rejected", rita.pk)}


def test_an_annotator_cannot_open_the_review_or_dashboard_pages(server, page, campaign, alice):
    log_in(page, server, "alice")
    for name in ("review", "dashboard"):
        response = page.goto(f"{server.url}/campaigns/{campaign.pk}/{name}/")
        assert response.status == 403
        assert "You cannot open this page" in page.text_content("main")
    response = page.goto(f"{server.url}/campaigns/{campaign.pk + 1000}/annotate/")
    assert response.status == 404
