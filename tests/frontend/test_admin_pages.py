"""The campaign administration pages as served: who may open which, and the links by role.

Their data comes from the API (tests/annotations/); test_admin_browser.py drives them.
"""

import pytest
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db

PAGES = ["settings", "members", "tasks", "audit", "gold", "tasks/1"]


def test_an_annotator_opens_none_of_them_and_sees_no_links(client, alice, campaign):
    client.force_login(alice)
    for page in PAGES:
        response = client.get(f"/campaigns/{campaign.pk}/{page}/")
        assert response.status_code == 403, page
        assert "You cannot open this page" in response.content.decode()
    home = client.get("/").content.decode()
    assert f"/campaigns/{campaign.pk}/members/" not in home
    assert "New campaign" not in home


def test_a_reviewer_opens_all_but_settings_and_its_link_is_not_shown(client, rita, campaign):
    client.force_login(rita)
    for page in PAGES[1:]:
        html = client.get(f"/campaigns/{campaign.pk}/{page}/").content.decode()
        assert 'class="campaign-nav"' in html, page
        assert f"/campaigns/{campaign.pk}/settings/" not in html
    assert client.get(f"/campaigns/{campaign.pk}/settings/").status_code == 403
    members = client.get(f"/campaigns/{campaign.pk}/members/").content.decode()
    assert "Create annotator accounts" not in members  # admins only


def test_an_admin_opens_every_page_and_a_stranger_none(client, adam, stranger, campaign):
    client.force_login(adam)
    for page in PAGES:
        html = client.get(f"/campaigns/{campaign.pk}/{page}/").content.decode()
        assert f'href="/campaigns/{campaign.pk}/settings/"' in html, page
    assert (
        "Create annotator accounts"
        in client.get(f"/campaigns/{campaign.pk}/members/").content.decode()
    )
    client.force_login(stranger)
    for page in PAGES:
        assert client.get(f"/campaigns/{campaign.pk}/{page}/").status_code == 404


def test_the_new_campaign_form_is_for_those_who_may_create_campaigns(client, stranger):
    client.force_login(stranger)
    assert "New campaign" not in client.get("/").content.decode()
    stranger.user_permissions.add(Permission.objects.get(codename="add_campaign"))
    client.force_login(stranger)
    html = client.get("/").content.decode()
    assert "New campaign" in html and "campaign_new.js" in html
