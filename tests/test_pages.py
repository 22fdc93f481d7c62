"""Login and the campaign list, through the browser-facing pages."""

import pytest

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
