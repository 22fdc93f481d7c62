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

from annotations.models import Assignment, GoldBatch, Task, Vote
from clips.synthetic import make_test_video
from labelstudio_ferv.expressions import Answer
from tests.conftest import ServerProcess, wait_for
from tests.factories import ClipFactory, TaskFactory, UserFactory, voted_task

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update",
]  # fmt: skip
# Clips of four shapes (landscape, portrait, wide, square), as real campaigns mix them.
SHAPES = (
    ("testsrc2", (320, 240)),
    ("smptebars", (180, 320)),
    ("mandelbrot", (320, 144)),
    ("rgbtestsrc", (240, 240)),
)
VIEWPORTS = {"laptop": (1366, 768), "tablet": (768, 1024), "phone": (390, 844)}
# Keys 1-7 are the classes in FERV39k order, 0 is PASS.
KEY_ANSWER = {str(i + 1): Answer(i) for i in range(7)} | {"0": Answer.PASS}


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the tests save what they saw: a temporary folder, or SCREENSHOT_DIR when set.

    ``make screenshots`` points it at docs/screenshots; a test run leaves the checkout as it was.
    """
    folder = os.environ.get("SCREENSHOT_DIR")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def media_files() -> list[tuple[str, str, tuple[int, int]]]:
    """Real, playable clips (H.264 MP4 + JPEG poster) in MEDIA_ROOT, as the server serves them."""
    folder = Path(settings.MEDIA_ROOT) / "browser-tests"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (pattern, size) in enumerate(SHAPES):
        video = folder / f"clip-{i}.mp4"
        poster = folder / f"clip-{i}.jpg"
        if not video.exists():
            make_test_video(video, seconds=1.0, size=size, pattern=pattern)
            subprocess.run(
                ["ffmpeg", "-loglevel", "error", "-y", "-i", str(video), "-frames:v", "1",
                 str(poster)],
                check=True,
            )  # fmt: skip
        files.append((f"browser-tests/{video.name}", f"browser-tests/{poster.name}", size))
    return files


def real_clip(media_files, n: int):
    video, poster, (width, height) = media_files[n % len(media_files)]
    return ClipFactory(
        video=video, poster=poster, duration_s=1.0, fps=25.0, frame_count=25, width=width,
        height=height,
    )  # fmt: skip


@pytest.fixture
def server(live_db):
    proc = ServerProcess(CELERY_TASK_ALWAYS_EAGER="1").start()
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


@pytest.fixture
def sized_page(browser, server, request):
    """A page at the viewport named by the test's ``viewport`` parameter."""
    width, height = VIEWPORTS[request.node.callspec.params["viewport"]]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


# Every <video> as a person would see it: the computed style and the box on screen, not only
# the DOM's `hidden`; plus what it plays (its clip, and the size of the frames it decoded).
VIDEOS = """() => [...document.querySelectorAll('video')].map((v) => {
    const s = getComputedStyle(v);
    const r = v.getBoundingClientRect();
    const stage = v.closest('.stage').getBoundingClientRect();
    return {
        visible: s.display !== 'none' && s.visibility === 'visible' && Number(s.opacity) > 0 &&
                 r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 &&
                 r.top < innerHeight && r.left < innerWidth,
        hidden: v.hidden, display: s.display,
        box: [r.left, r.top, r.right, r.bottom],
        stage: [stage.left, stage.top, stage.right, stage.bottom],
        clip: v.dataset.clip || v.dataset.task || '', src: v.getAttribute('src') || '',
        poster: v.getAttribute('poster') || '', paused: v.paused,
        frame: [v.videoWidth, v.videoHeight],
    };
})"""
# Where every button is: they must not move from one clip to the next.
BOXES = """(selector) => [...document.querySelectorAll(selector)].map((b) => {
    const r = b.getBoundingClientRect();
    return [b.textContent.trim(), Math.round(r.left), Math.round(r.top), Math.round(r.width),
            Math.round(r.height)];
})"""


def visible_videos(page) -> list[dict]:
    return [v for v in page.evaluate(VIDEOS) if v["visible"]]


def the_one_visible_video(page) -> dict:
    """Assert that exactly one player is visible, inside its stage; return it."""
    videos = page.evaluate(VIDEOS)
    shown = [v for v in videos if v["visible"]]
    assert len(shown) == 1, videos
    video = shown[0]
    left, top, right, bottom = video["box"]
    s_left, s_top, s_right, s_bottom = video["stage"]
    assert s_left <= left and right <= s_right and s_top <= top and bottom <= s_bottom, video
    assert right <= page.viewport_size["width"], video
    return video


def no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]


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
    server, page, campaign, alice, media_files, screenshots
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
            page.screenshot(path=str(screenshots / "workspace.png"))
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


@pytest.mark.parametrize("size", list(VIEWPORTS.values()), ids=list(VIEWPORTS))
def test_the_workspace_fits_laptop_tablet_and_phone_widths_with_readable_named_buttons(
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
    server, page, campaign, rita, media_files, screenshots
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
    page.screenshot(path=str(screenshots / "review.png"), full_page=True)

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
    page.screenshot(path=str(screenshots / "dashboard.png"), full_page=True)

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


def clip_of(assignment: str):
    return Assignment.objects.select_related("task__clip").get(pk=int(assignment)).task.clip


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_workspace_shows_one_clip_at_a_time_its_buttons_stay_put_and_nothing_once_done(
    server, sized_page, campaign, alice, media_files, screenshots, viewport
):
    page = sized_page
    campaign.gold_share = 0
    campaign.save()
    campaign_tasks(campaign, media_files, len(SHAPES))  # one clip of each shape
    log_in(page, server, "alice")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    buttons = "#answers button, .controls button"
    where = None
    shapes = set()
    previous = None
    for i in range(len(SHAPES)):
        assignment = shown_assignment(page, previous)
        clip = clip_of(assignment)
        video = the_one_visible_video(page)
        # The visible player is the current clip: its id, and the frames it decoded.
        assert video["clip"] == str(clip.pk)
        assert video["frame"] == [clip.width, clip.height]
        shapes.add((clip.width, clip.height))
        no_sideways_scroll(page)
        now = page.evaluate(BOXES, buttons)
        assert len(now) == 16
        assert where is None or now == where, f"the buttons moved on clip {i}"
        where = now
        if i == 0:
            page.screenshot(path=str(screenshots / f"workspace-{viewport}.png"))
        if i == 1:
            # Undo shows the answered clip again, alone, in the same place.
            page.wait_for_selector("#pending", state="hidden")
            page.keyboard.press("u")
            page.wait_for_function("document.getElementById('app').dataset.mode === 'correcting'")
            page.wait_for_function("document.getElementById('video').readyState >= 2")
            video = the_one_visible_video(page)
            assert video["clip"] == str(clip_of(previous).pk)
            assert page.evaluate(BOXES, buttons) == where
            if viewport == "laptop":
                page.screenshot(path=str(screenshots / "workspace-undo.png"))
            page.keyboard.press("Escape")
            page.wait_for_function(
                "(a) => document.getElementById('app').dataset.mode === 'answering' && "
                "document.getElementById('app').dataset.assignment === a",
                arg=assignment,
            )
            assert the_one_visible_video(page)["clip"] == str(clip.pk)
        page.keyboard.press("4")
        previous = assignment
    assert len(shapes) == len(SHAPES)

    # Nothing is left: the page says so, and no frame or poster of an answered clip remains.
    page.wait_for_function(
        "document.getElementById('state').textContent.includes('No clip is left')"
    )
    page.wait_for_selector("#pending", state="hidden")
    assert visible_videos(page) == []
    player = page.evaluate(
        "(() => { const v = document.getElementById('video');"
        " return [v.getAttribute('src'), v.getAttribute('poster')]; })()"
    )
    assert player == [None, None]
    assert all(v["paused"] for v in page.evaluate(VIDEOS))  # nothing plays out of sight either
    assert page.evaluate(BOXES, buttons) == where
    page.wait_for_function("document.getElementById('progress').textContent.includes('all done')")
    assert " of " not in page.text_content("#progress")
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"workspace-done-{viewport}.png"))
    wait_for(lambda: Vote.objects.filter(annotator=alice).count() == len(SHAPES))


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_review_page_shows_one_clip_confirms_each_decision_and_nothing_once_done(
    server, sized_page, campaign, rita, media_files, screenshots, viewport
):
    page = sized_page
    voters = [UserFactory(username=f"voter{i}") for i in range(5)]
    f, su, n = Answer.FEAR, Answer.SURPRISE, Answer.NEUTRAL
    # A portrait clip, then a wide one.
    first = voted_task(campaign, [f, su, f, su, n], voters, clip=real_clip(media_files, 1))
    second = voted_task(campaign, [n, su, n, su, f], voters, clip=real_clip(media_files, 2))
    assert first.status == second.status == "disputed"
    log_in(page, server, "rita")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/review/")
    where = None
    for n_left, task in ((1, first), (0, second)):
        page.wait_for_function(
            "(t) => document.getElementById('app').dataset.task === String(t) && "
            "document.getElementById('video').readyState >= 2",
            arg=task.pk,
        )
        video = the_one_visible_video(page)
        assert video["clip"] == str(task.pk)  # the review player is keyed by task
        assert video["frame"] == [task.clip.width, task.clip.height]
        no_sideways_scroll(page)
        now = page.evaluate(BOXES, "#decide button")
        assert len(now) == 9
        assert where is None or now == where, "the decision buttons moved"
        where = now
        if task == first:
            page.screenshot(path=str(screenshots / f"review-{viewport}.png"))
        page.keyboard.press("3")  # fear
        page.wait_for_selector("#confirm:not([hidden])")
        text = page.text_content("#confirm")
        assert f"Saved: {task.clip.name} labelled Fear." in text
        assert ("1 left to review" if n_left else "No disputed clip is left") in text
        assert page.is_visible("#confirm")
        wait_for(lambda t=task: Task.objects.get(pk=t.pk).status == "adjudicated")
    # Nothing matches any more: nothing plays, no poster stays, the page says so.
    page.wait_for_selector("#empty:not([hidden])")
    assert page.is_visible("#empty")
    assert visible_videos(page) == []
    state = page.evaluate(VIDEOS)[0]
    assert (state["src"], state["poster"], state["paused"]) == ("", "", True)
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"review-done-{viewport}.png"))
