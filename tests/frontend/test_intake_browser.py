"""The intake page, the guidelines in the workspace and their editor, and the dashboard's
progress chart, in headless Chromium against the app under gunicorn (see test_browser.py)."""

# The fixtures (server, browser, pages at named viewports, screenshots) are test_browser.py's,
# imported by name; pytest then passes them as arguments of the same names.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Campaign, Task, Vote
from clips.models import Clip, MediaStatus, Scene
from clips.synthetic import make_test_video
from labelstudio_ferv.expressions import Answer
from tests.factories import TaskFactory, UserFactory
from tests.frontend.test_browser import (  # noqa: F401  (fixtures)
    browser,
    log_in,
    media_files,
    no_sideways_scroll,
    page,
    real_clip,
    screenshots,
    server,
    sized_page,
)

pytestmark = pytest.mark.browser

# Markdown an admin might paste from anywhere: nothing in it may run in an annotator's browser.
HOSTILE = (
    "# How to label\n\nLook at the **whole** clip before answering.\n\n"
    "<script>window.pwned = 1</script>\n\n"
    '<img src="x" onerror="window.pwned = 2">\n\n'
    "[a link](javascript:window.pwned=3) and [the paper](https://example.org/ferv39k)\n\n"
    "- Happy: a smile that reaches the eyes\n- Neutral: no expression\n"
)


def wait_outcomes(page, selector: str, n: int) -> list[dict]:
    page.wait_for_function(
        """([sel, n]) => {
            const rows = [...document.querySelectorAll(sel + ' tbody tr')];
            return rows.length === n && rows.every((r) => r.dataset.outcome !== 'working');
        }""",
        arg=[selector, n],
        timeout=90_000,
    )
    return page.evaluate(
        """(sel) => [...document.querySelectorAll(sel + ' tbody tr')].map((r) => ({
            file: r.dataset.file, outcome: r.dataset.outcome,
            text: r.querySelector('.outcome').textContent,
            scene: r.children[1].textContent,
        }))""",
        selector,
    )


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_an_admin_uploads_three_files_two_become_ready_and_the_other_says_why(
    server, sized_page, campaign, adam, screenshots, tmp_path, viewport
):
    page = sized_page
    scene = Scene.objects.order_by("position").first()
    other_scene = Scene.objects.order_by("position").last()
    files = []
    for i, size in enumerate([(320, 240), (240, 320)]):
        path = tmp_path / f"face-{i}.mp4"
        make_test_video(path, seconds=1.0, size=size, pattern="testsrc2")
        files.append(path)
    junk = tmp_path / "notes.mp4"
    junk.write_text("This is a text file, not a video.\n")
    files.insert(1, junk)

    log_in(page, server, "adam")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/intake/")
    page.wait_for_selector("#app[data-ready='1']")
    page.select_option("#clip-scene", str(scene.pk))
    page.set_input_files("#clip-files", [str(f) for f in files])
    rows = wait_outcomes(page, "#clip-uploads", 3)
    by_file = {r["file"]: r for r in rows}
    assert by_file["face-0.mp4"]["outcome"] == by_file["face-1.mp4"]["outcome"] == "ok", rows
    assert by_file["face-0.mp4"]["text"] == "Ready"
    assert by_file["notes.mp4"]["outcome"] == "error"
    assert "notes.mp4" in by_file["notes.mp4"]["text"] and len(by_file["notes.mp4"]["text"]) > 20
    ready = Task.objects.filter(campaign=campaign, clip__status=MediaStatus.READY)
    assert sorted(ready.values_list("clip__name", flat=True)) == ["face-0.mp4", "face-1.mp4"]
    assert set(ready.values_list("clip__scene", flat=True)) == {scene.pk}
    assert not Clip.objects.filter(name="notes.mp4", status=MediaStatus.READY).exists()

    # A folder named after a scene picks that scene by itself ("By folder name").
    folder = tmp_path / "upload" / other_scene.folder
    folder.mkdir(parents=True)
    make_test_video(folder / "in-folder.mp4", seconds=1.0, size=(240, 240), pattern="smptebars")
    page.select_option("#clip-scene", "")
    page.set_input_files("#clip-folder", str(tmp_path / "upload"))
    rows = wait_outcomes(page, "#clip-uploads", 4)
    [row] = [r for r in rows if r["file"].endswith("in-folder.mp4")]
    assert row["outcome"] == "ok" and row["scene"] == other_scene.name, row
    assert Task.objects.get(campaign=campaign, clip__name="in-folder.mp4").clip.scene == other_scene

    # The live counts follow.
    page.wait_for_function(
        "document.getElementById('ingestion-counts')?.textContent.startsWith('3 clips: 3 ready')"
    )
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"intake-{viewport}.png"), full_page=True)


def test_an_annotator_sees_the_guidelines_on_a_first_visit_and_behind_the_help_key(
    server, page, campaign, alice, media_files, screenshots
):
    campaign.gold_share = 0
    campaign.guidelines = HOSTILE
    campaign.save()
    example = TaskFactory(campaign=campaign, clip=real_clip(media_files, 0)).clip
    TaskFactory(campaign=campaign, clip=real_clip(media_files, 1))
    Campaign.objects.filter(pk=campaign.pk).update(guideline_examples={"happy": [example.pk]})

    log_in(page, server, "alice")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    page.wait_for_selector("#help:not([hidden]) #guidelines:not([hidden])")
    body = page.locator("#guidelines-body")
    assert body.locator("h1").text_content() == "How to label"
    assert body.locator("li").count() == 2
    assert body.locator("script, img").count() == 0
    assert body.locator("a[href^='javascript']").count() == 0
    assert body.locator("a[href='https://example.org/ferv39k']").count() == 1
    page.wait_for_selector(f"#guideline-examples video[data-example='{example.pk}']")
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(screenshots / "workspace-guidelines.png"))

    # While they are open, the answer keys do nothing; Esc closes them.
    page.keyboard.press("4")
    assert not Vote.objects.exists()
    page.keyboard.press("Escape")
    page.wait_for_selector("#help", state="hidden")

    # A second visit does not open them again; the help key does.
    page.reload()
    page.wait_for_function("document.getElementById('app').dataset.mode === 'answering'")
    page.wait_for_timeout(500)
    assert page.locator("#help").is_hidden()
    page.keyboard.press("?")
    page.wait_for_selector("#help:not([hidden]) #guidelines:not([hidden])")
    page.keyboard.press("Escape")

    # Changed guidelines open again on the next visit.
    Campaign.objects.filter(pk=campaign.pk).update(guidelines="# New rule\n\nAlso check the eyes.")
    page.reload()
    page.wait_for_selector("#help:not([hidden]) #guidelines-body h1:has-text('New rule')")
    assert page.evaluate("window.pwned") is None


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_an_admin_edits_the_guidelines_and_the_preview_is_the_sanitised_rendering(
    server, sized_page, campaign, adam, screenshots, viewport
):
    page = sized_page
    log_in(page, server, "adam")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/guidelines/")
    page.wait_for_selector("#preview p")
    page.fill("#markdown", HOSTILE)
    page.click("#save")
    page.wait_for_selector("#saved:has-text('Saved')")
    assert page.locator("#preview h1").text_content() == "How to label"
    assert page.locator("#preview script, #preview img").count() == 0
    assert page.evaluate("window.pwned") is None
    assert Campaign.objects.get(pk=campaign.pk).guidelines == HOSTILE
    # A bad example clip is refused with the field named, and nothing changes.
    page.fill("#ex-happy", "999999")
    page.click("#save")
    page.wait_for_selector("#message:has-text('guideline_examples')")
    assert Campaign.objects.get(pk=campaign.pk).guideline_examples == {}
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"guidelines-{viewport}.png"), full_page=True)


@pytest.mark.parametrize("viewport", ["laptop", "phone"])
def test_the_dashboard_charts_answers_per_hour_and_trusted_clips(
    server, sized_page, campaign, rita, screenshots, viewport
):
    page = sized_page
    now = timezone.now()
    voters = [UserFactory(username=f"voter{i}") for i in range(3)]
    tasks = [TaskFactory(campaign=campaign) for _ in range(12)]
    for i, task in enumerate(tasks):
        for j, voter in enumerate(voters):
            vote = Vote.objects.create(
                task=task, campaign=campaign, annotator=voter, answer=int(Answer.HAPPY)
            )
            # Mid-hour, so that each clip's three votes fall in one hour.
            at = (now - timedelta(hours=1)).replace(minute=30) - timedelta(hours=3 * i, minutes=j)
            Vote.objects.filter(pk=vote.pk).update(created_at=at)
        if i < 8:
            Task.objects.filter(pk=task.pk).update(
                status="trusted", label=int(Answer.HAPPY), vote_count=3,
                updated_at=now - timedelta(days=i // 2),
            )  # fmt: skip
    log_in(page, server, "rita")
    page.goto(f"{server.url}/campaigns/{campaign.pk}/dashboard/")
    page.wait_for_selector("#chart-answers svg rect.col")
    page.wait_for_selector("#chart-trusted svg polyline")
    assert page.locator("#chart-answers svg rect.col").count() == 12
    assert page.locator("#chart-trusted svg circle").count() == 4
    summary = page.text_content("#history-summary")
    assert "8 trusted" in summary and "Estimated finish" in summary
    assert page.locator("#throughput tbody tr").count() == 3
    box = page.locator("#chart-answers svg").bounding_box()
    assert box["width"] > 200 and box["height"] > 40
    no_sideways_scroll(page)
    page.locator("#history").screenshot(path=str(screenshots / f"dashboard-chart-{viewport}.png"))


def test_annotators_and_reviewers_cannot_open_the_intake_or_guidelines_pages(
    server, page, campaign, alice, rita
):
    for user in ("alice", "rita"):
        log_in(page, server, user)
        for name in ("intake", "guidelines"):
            response = page.goto(f"{server.url}/campaigns/{campaign.pk}/{name}/")
            assert response.status == 403
        page.context.clear_cookies()
