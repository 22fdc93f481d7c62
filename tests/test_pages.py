"""Login and the campaign list, through the browser-facing pages."""

import json
import re
from pathlib import Path

import pytest

from labelstudio_ferv.expressions import Answer
from tests.factories import CampaignFactory


@pytest.mark.django_db
def test_login_then_the_home_page_lists_my_campaigns_and_role(client, alice, campaign):
    CampaignFactory(name="Someone else's campaign")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    response = client.post("/login/", {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "Scenes of daily life" in page
    assert "Annotator" in page
    assert "Someone else" not in page


@pytest.mark.django_db
def test_a_wrong_password_shows_a_clear_message(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


@pytest.mark.django_db
def test_health_endpoint_and_schema(client):
    assert client.get("/api/v1/health/").json() == {"status": "ok", "database": "postgresql"}
    schema = client.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/health/" in schema.content


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["annotate", "review", "dashboard"])
def test_the_pages_carry_the_expression_classes_from_the_one_definition(
    client, rita, campaign, page
):
    client.force_login(rita)
    html = client.get(f"/campaigns/{campaign.pk}/{page}/").content.decode()
    found = re.search(r'<script id="answers-data" type="application/json">(.*?)</script>', html)
    assert found, "the page does not carry the answers"
    answers = json.loads(found.group(1))
    assert [a["key"] for a in answers] == [a.key for a in Answer]
    assert [a["name"] for a in answers] == [a.label for a in Answer]
    assert [a["hotkey"] for a in answers] == ["1", "2", "3", "4", "5", "6", "7", "0"]


def test_the_browser_code_keeps_no_copy_of_the_expression_classes():
    static = Path(__file__).resolve().parent.parent / "frontend" / "static" / "frontend"
    for script in static.glob("*.js"):
        text = script.read_text()
        for a in Answer:
            if a == Answer.PASS:
                continue
            assert f'"{a.key}"' not in text and f"'{a.key}'" not in text, (script.name, a.key)


@pytest.mark.django_db
def test_the_api_docs_load_only_the_projects_own_assets(client, alice):
    client.force_login(alice)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in a and a.endswith(".js") for a in assets), assets
    for url in assets:
        assert url.startswith("/"), f"{url} is loaded from outside the app"
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert body, url


@pytest.mark.django_db
def test_a_page_with_a_malformed_or_huge_campaign_id_is_a_plain_404(client, alice):
    client.force_login(alice)
    for campaign_id in ["abc", "-1", "9" * 25, "0"]:
        for page in ["annotate", "review", "dashboard"]:
            response = client.get(f"/campaigns/{campaign_id}/{page}/")
            assert response.status_code == 404, (campaign_id, page)
