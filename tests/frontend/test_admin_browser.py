"""The admin journey of issue 15 in headless Chromium, with no shell and no Django admin.

A user allowed to create campaigns creates one on the home page, sets its rules (a refused rule
says why next to its field), creates three annotator accounts (their one-time passwords shown
once) and adds a reviewer, uploads clips on the intake page, builds a gold set in the gold
workspace (a CSV with a bad row changes nothing), retires a gold clip on the tasks page; an
annotator logs in with the password the page gave and works; the admin pauses the campaign (the
annotator sees why, in place of the player) and resumes it, looks at the dashboard and starts an
export, then reads the audit log. Every page is also looked at on a phone.
tests/annotations/test_journey_api.py walks the same journey over the API.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from annotations.models import Campaign, ExportJob, Membership, Task, Vote
from clips.models import MediaStatus, Scene
from clips.synthetic import make_test_video
from tests.conftest import wait_for
from tests.factories import TaskFactory, UserFactory
from tests.frontend import test_browser as tb
from tests.frontend.test_browser import (
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
    page.on("dialog", lambda dialog: dialog.accept())  # every confirmation is answered yes
    return page


def log_in(page, server, username: str, password: str = "pw-for-tests") -> None:  # noqa: S107
    page.goto(server.url + "/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_url(server.url + "/")


def shown_task(page, other_than: str | None = None) -> str:
    """Wait until the gold workspace plays a clip (not ``other_than``) and return its task."""
    page.wait_for_function(
        """(prev) => {
            const app = document.getElementById('app');
            const v = document.getElementById('video');
            return app.dataset.mode === 'labelling' && app.dataset.task &&
                   app.dataset.task !== prev && v.readyState >= 2;
        }""",
        arg=other_than,
    )
    return page.get_attribute("#app", "data-task")


def shot(page, screenshots, name: str) -> None:
    no_sideways_scroll(page)
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def test_an_admin_runs_a_campaign_from_the_browser(
    browser, server, media_files, screenshots, live_db, tmp_path
):
    carol = UserFactory(username="carol")
    carol.user_permissions.add(Permission.objects.get(codename="add_campaign"))
    UserFactory(username="rosa")
    admin = new_page(browser, LAPTOP)

    # A new campaign from the home page; the settings page says what to do next.
    log_in(admin, server, "carol")
    assert admin.get_by_role("heading", name="New campaign").is_visible()
    admin.fill("#nc-name", "Street scenes")
    admin.fill("#nc-description", "Label the expression of the face in each clip.")
    shot(admin, screenshots, "admin-home")
    admin.click("text=Create campaign")
    admin.wait_for_url("**/settings/")
    campaign = Campaign.objects.get(name="Street scenes")
    assert Membership.objects.get(campaign=campaign, user=carol).role == "admin"
    assert admin.locator("#next-steps").is_visible()
    assert admin.text_content("#state") == "Active"
    nav = admin.locator(".campaign-nav")
    for name in ("Dashboard", "Review", "Tasks", "Gold", "Members", "Audit log", "Settings"):
        assert nav.get_by_role("link", name=name, exact=True).is_visible(), name

    # Rules more votes can never settle are refused, with the reason next to the field.
    admin.wait_for_function("document.getElementById('cs-votes_per_clip').value !== ''")
    admin.select_option("#cs-aggregation", "majority")
    admin.fill("#cs-votes_per_clip", "4")
    admin.fill("#cs-max_votes", "3")
    admin.click("text=Save changes")
    admin.wait_for_selector("#cs-max_votes-error:not([hidden])")
    assert admin.get_attribute("#cs-max_votes", "aria-invalid") == "true"
    shot(admin, screenshots, "admin-settings-error")
    admin.fill("#cs-votes_per_clip", "2")
    admin.fill("#cs-min_agreement", "0.5")
    admin.click("text=Save changes")
    admin.wait_for_selector("#saved:has-text('Saved')")
    assert admin.is_hidden("#cs-max_votes-error")
    campaign.refresh_from_db()
    assert (campaign.aggregation, campaign.votes_per_clip, campaign.max_votes) == (
        "majority", 2, 3,
    )  # fmt: skip
    # The precision, quality and assignment rules: a bad value is named next to its field.
    school = Scene.objects.get(name="School")
    admin.fill("#cs-target_precision", "1.5")
    admin.fill("#cs-daily_quota", "200")
    admin.fill(f"#cs-scene_priority input[data-scene='{school.pk}']", "500")
    admin.click("text=Save changes")
    admin.wait_for_selector("#cs-target_precision-error:not([hidden])")
    assert admin.get_attribute("#cs-target_precision", "aria-invalid") == "true"
    shot(admin, screenshots, "admin-settings-rules-error")
    admin.fill("#cs-target_precision", "0.99")
    admin.click("text=Save changes")
    admin.wait_for_selector("#cs-scene_priority-error:not([hidden])")
    assert "School" in admin.text_content("#cs-scene_priority-error")
    assert admin.is_hidden("#cs-target_precision-error")
    weight = f"#cs-scene_priority input[data-scene='{school.pk}']"
    assert admin.get_attribute(weight, "aria-invalid") == "true"
    admin.fill(weight, "5")
    admin.fill("#cs-audit_share", "0.1")
    admin.click("text=Save changes")
    admin.wait_for_selector("#saved:has-text('Saved')")
    campaign.refresh_from_db()
    assert (campaign.target_precision, campaign.daily_quota, campaign.audit_share) == (
        0.99, 200, 0.1,
    )  # fmt: skip
    assert campaign.scene_priority == {str(school.pk): 5}
    admin.reload()
    admin.wait_for_function("document.getElementById('cs-daily_quota').value === '200'")
    assert admin.input_value(weight) == "5"

    # Three annotator accounts at once: their passwords are shown once, with a CSV to keep.
    admin.click(".campaign-nav >> text=Members")
    admin.fill("#cr-usernames", "ann1\nann2\nann3")
    admin.click("text=Create accounts")
    admin.wait_for_selector("#credentials:not([hidden])")
    assert "shown only once" in admin.text_content("#credentials .warning")
    rows = admin.locator("#credentials-table tbody tr")
    assert rows.count() == 3
    passwords = {
        rows.nth(i).locator("td").nth(0).text_content(): rows.nth(i)
        .locator("td")
        .nth(1)
        .text_content()
        for i in range(3)
    }
    assert set(passwords) == {"ann1", "ann2", "ann3"} and all(
        len(p) >= 8 for p in passwords.values()
    )
    csv_text = admin.evaluate(
        "fetch(document.getElementById('credentials-csv').href).then((r) => r.text())"
    )
    assert csv_text.splitlines()[0] == "username,password,role"
    assert f"ann1,{passwords['ann1']},annotator" in csv_text.splitlines()
    shot(admin, screenshots, "admin-members-credentials")
    admin.click("text=I have saved them: hide")
    assert admin.locator("#credentials-table tbody tr").count() == 0
    # An existing user as a reviewer.
    admin.fill("#ad-username", "rosa")
    admin.select_option("#ad-role", "reviewer")
    admin.click("text=Add member")
    admin.wait_for_selector("#members tr[data-username=rosa]")
    assert admin.input_value("#members tr[data-username=rosa] select") == "reviewer"
    admin.fill("#ad-username", "nobody-here")
    admin.click("text=Add member")
    admin.wait_for_selector("#ad-username-error:not([hidden])")
    assert "nobody-here" in admin.text_content("#ad-username-error")
    roles = dict(Membership.objects.filter(campaign=campaign).values_list("user__username", "role"))
    assert roles == {"carol": "admin", "ann1": "annotator", "ann2": "annotator",
                     "ann3": "annotator", "rosa": "reviewer"}  # fmt: skip
    assert admin.is_visible("#none-paused") and admin.is_hidden("#paused")
    shot(admin, screenshots, "admin-members")

    # Clips arrive through the intake page: the admin picks a scene and chooses the files.
    files = []
    for i in range(5):
        path = tmp_path / f"face-{i}.mp4"
        # Distinct sizes: two files with the same bytes would be one clip.
        make_test_video(path, seconds=1.0, size=(240 + 16 * i, 240), pattern="testsrc2")
        files.append(str(path))
    admin.click(".campaign-nav >> text=Intake")
    admin.wait_for_selector("#app[data-ready='1']")
    admin.select_option("#clip-scene", str(school.pk))
    admin.set_input_files("#clip-files", files)
    # Each file is transcoded as it arrives; on a busy machine that takes a while.
    admin.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('#clip-uploads tbody tr')];
            return rows.length === 5 && rows.every((r) => r.dataset.outcome !== 'working');
        }""",
        timeout=300_000,
    )
    outcomes = admin.eval_on_selector_all(
        "#clip-uploads tbody tr", "(rows) => rows.map((r) => r.dataset.outcome)"
    )
    assert outcomes == ["ok"] * 5
    admin.wait_for_function(
        "document.getElementById('ingestion-counts')?.textContent.startsWith('5 clips: 5 ready')"
    )
    shot(admin, screenshots, "admin-intake")
    tasks = list(Task.objects.filter(campaign=campaign).order_by("id"))
    assert sorted(t.clip.name for t in tasks) == [f"face-{i}.mp4" for i in range(5)]
    assert {(t.clip.status, t.clip.scene_id, t.priority) for t in tasks} == {
        (MediaStatus.READY, school.pk, 5)
    }

    # A gold CSV with a bad row changes nothing and says which row and why.
    admin.click(".campaign-nav >> text=Gold")
    bad = "clip,label\nface-0.mp4,happy\nno-such-clip.mp4,sad\n"
    admin.set_input_files("#gi-file", files=[
        {"name": "gold.csv", "mimeType": "text/csv", "buffer": bad.encode()}
    ])  # fmt: skip
    admin.click("button:has-text('Import')")
    admin.wait_for_selector("#summary:has-text('Nothing was imported')")
    assert admin.locator("#results tbody tr").count() == 2
    assert "no-such-clip.mp4" in admin.text_content("#results tbody tr.result-error")
    assert not Task.objects.filter(campaign=campaign, is_gold=True).exists()
    shot(admin, screenshots, "admin-gold")

    # The gold set built in the gold workspace: watch each clip, press its class; 0 leaves one out.
    admin.click("#gold-workspace")
    admin.wait_for_url("**/gold/label/")
    labelled, shown = [], None
    for key in ("4", "0", "6", "3"):
        shown = shown_task(admin, shown)
        if key != "0":
            labelled.append((int(shown), int(key) - 1))
        admin.keyboard.press(key)
    shown_task(admin, shown)
    wait_for(lambda: Task.objects.filter(campaign=campaign, is_gold=True).count() == 3)
    gold = dict(
        Task.objects.filter(campaign=campaign, is_gold=True).values_list("pk", "gold_label")
    )
    assert gold == dict(labelled)
    assert "Gold clips: 3 · target 1" in admin.text_content("#progress")
    shot(admin, screenshots, "admin-gold-workspace")
    admin.click("text=Back to the gold set")
    export = admin.get_attribute("#export", "href")
    assert admin.request.get(server.url + export).text().count("\n") == 4  # header + 3 rows
    names = {t.pk: t.clip.name for t in tasks}
    retired = names[labelled[2][0]]

    # The tasks page: gold only, one retired; each row links to the clip's history.
    admin.click(".campaign-nav >> text=Tasks")
    admin.wait_for_selector("#tasks tbody tr[data-task]")
    assert admin.locator("#tasks tbody tr[data-task]").count() == 5
    admin.select_option("#f-gold", "true")
    admin.click("text=Apply filters")
    admin.wait_for_function("document.getElementById('app').dataset.loaded === '3'")
    admin.click(f"[aria-label='Retire gold clip {retired}']")
    admin.wait_for_selector("#confirm:has-text('no longer gold')")
    wait_for(lambda: not Task.objects.get(pk=labelled[2][0]).is_gold)
    admin.fill("#f-agreement_min", "2")
    admin.click("text=Apply filters")
    admin.wait_for_selector("#filter-error:not([hidden])")
    assert admin.get_attribute("#f-agreement_min", "aria-invalid") == "true"
    admin.click("button:has-text('Clear')")
    admin.wait_for_function("document.getElementById('app').dataset.loaded === '5'")
    shot(admin, screenshots, "admin-tasks")

    # An annotator logs in with the password the members page gave and answers three clips.
    annotator = new_page(browser, LAPTOP)
    log_in(annotator, server, "ann1", passwords["ann1"])
    annotator.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    previous = None
    for key in ("4", "6", "5"):
        previous = shown_assignment(annotator, previous)
        annotator.keyboard.press(key)
    shown_assignment(annotator, previous)
    annotator.wait_for_selector("#pending", state="hidden")
    wait_for(lambda: Vote.objects.filter(annotator__username="ann1").count() == 3)

    # Paused: the annotator's next answer is stored, and the page says why instead of a clip.
    admin.click(".campaign-nav >> text=Settings")
    admin.click("text=Pause campaign")
    admin.wait_for_selector("#state:has-text('Paused')")
    assert admin.locator(".campaign-nav .state-badge").text_content() == "Paused"
    wait_for(lambda: Campaign.objects.get(pk=campaign.pk).state == "paused")
    shot(admin, screenshots, "admin-settings")
    annotator.keyboard.press("1")
    annotator.wait_for_function(
        "document.getElementById('app').dataset.blocked === 'campaign_paused'"
    )
    assert "paused" in annotator.text_content("#state")
    assert annotator.is_visible("#state") and annotator.is_hidden("#message")
    assert visible_videos(annotator) == []
    wait_for(lambda: Vote.objects.filter(annotator__username="ann1").count() == 4)
    shot(annotator, screenshots, "workspace-paused")
    admin.click("text=Resume campaign")
    admin.wait_for_selector("#state:has-text('Active')")
    annotator.reload()
    shown_assignment(annotator)
    assert annotator.get_attribute("#app", "data-blocked") == ""

    # The clip's history: the votes given, who gave them.
    voted = Vote.objects.filter(annotator__username="ann1").first().task_id
    admin.goto(f"{server.url}/campaigns/{campaign.pk}/tasks/{voted}/")
    admin.wait_for_selector("#votes tbody tr:has-text('ann1')")
    assert "No review decision yet" in admin.text_content("#decisions")
    shot(admin, screenshots, "admin-task-history")

    # The dashboard, and an export.
    admin.click(".campaign-nav >> text=Dashboard")
    admin.wait_for_selector("#progress [data-status=collecting]")
    admin.click("text=Export labels (CSV)")
    admin.wait_for_selector("#exports a:has-text('Download')")
    assert ExportJob.objects.get(campaign=campaign).status == "done"

    # The audit log, newest first.
    admin.click(".campaign-nav >> text=Audit log")
    admin.wait_for_selector("#audit tbody tr[data-action]")
    actions = admin.eval_on_selector_all(
        "#audit tbody tr[data-action]", "(rows) => rows.map((r) => r.dataset.action)"
    )
    assert actions == [
        "campaign_resumed", "campaign_paused", "gold_retired", "gold_set", "gold_set",
        "gold_set", "members_added", "members_added", "campaign_edited", "campaign_edited",
        "campaign_created",
    ]  # fmt: skip
    assert "Campaign paused" in admin.text_content("#audit tbody")
    shot(admin, screenshots, "admin-audit")

    # Every page on a phone: nothing scrolls sideways, the navigation is there.
    phone = new_page(browser, PHONE)
    log_in(phone, server, "carol")
    shot(phone, screenshots, "admin-home-phone")
    for name, ready in (
        ("settings", "#app[data-state]"),
        ("members", "#members tr[data-username]"),
        ("tasks", "#tasks tbody tr[data-task]"),
        ("gold", "#import"),
        ("intake", "#app[data-ready='1']"),
        ("gold/label", "#app[data-task]"),
        ("audit", "#audit tbody tr[data-action]"),
    ):
        phone.goto(f"{server.url}/campaigns/{campaign.pk}/{name}/")
        phone.wait_for_selector(ready)
        assert phone.locator(".campaign-nav").get_by_role("link", name="Tasks").is_visible()
        shot(phone, screenshots, f"admin-{name.replace('/', '-')}-phone")
    admin.click(".campaign-nav >> text=Settings")
    admin.click("text=Pause campaign")
    annotator_phone = new_page(browser, PHONE)
    log_in(annotator_phone, server, "ann2", passwords["ann2"])
    annotator_phone.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    annotator_phone.wait_for_function(
        "document.getElementById('app').dataset.blocked === 'campaign_paused'"
    )
    assert visible_videos(annotator_phone) == []
    shot(annotator_phone, screenshots, "workspace-paused-phone")


def test_a_paused_annotator_is_told_why_and_a_reviewer_reinstates_them(
    browser, server, media_files, screenshots, campaign, alice, rita
):
    from django.db import transaction

    from annotations.quality import annotator_pause_locked

    for i in range(3):
        TaskFactory(campaign=campaign, clip=real_clip(media_files, i))
    with transaction.atomic():
        member = Membership.objects.select_for_update().get(campaign=campaign, user=alice)
        annotator_pause_locked(member=member, reason="3 of 10 gold answers right in batch 1.")

    annotator = new_page(browser, PHONE)
    log_in(annotator, server, "alice")
    annotator.goto(f"{server.url}/campaigns/{campaign.pk}/annotate/")
    annotator.wait_for_function(
        "document.getElementById('app').dataset.blocked === 'annotator_paused'"
    )
    assert "3 of 10 gold answers" in annotator.text_content("#state")
    assert visible_videos(annotator) == [] and annotator.is_hidden("#message")
    shot(annotator, screenshots, "workspace-annotator-paused-phone")

    reviewer = new_page(browser, LAPTOP)
    log_in(reviewer, server, "rita")
    reviewer.goto(f"{server.url}/campaigns/{campaign.pk}/members/")
    reviewer.wait_for_selector("#paused tr[data-username=alice]")
    assert "3 of 10 gold answers" in reviewer.text_content("#paused")
    assert reviewer.locator("#create").count() == 0  # account creation is for admins
    shot(reviewer, screenshots, "admin-members-paused")
    reviewer.click("[aria-label='Reinstate alice']")
    reviewer.wait_for_selector("#none-paused:not([hidden])")
    wait_for(lambda: Membership.objects.get(campaign=campaign, user=alice).paused_at is None)

    annotator.reload()
    shown_assignment(annotator)
    assert annotator.get_attribute("#app", "data-blocked") == ""
    # Welcomed back, once: the message goes with the first answer and does not come again.
    annotator.wait_for_selector("#message:has-text('Welcome back')")
    assert annotator.locator("#message").evaluate("(m) => m.classList.contains('info')")
    shot(annotator, screenshots, "workspace-welcome-back-phone")
    annotator.keyboard.press("4")
    annotator.wait_for_selector("#message", state="hidden")
    annotator.reload()
    shown_assignment(annotator)
    annotator.wait_for_selector("#pending", state="hidden")
    assert annotator.is_hidden("#message")
