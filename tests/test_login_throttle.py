"""Failed logins are limited per username and per client address, on the API and the form."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import wait_for
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

RIGHT = "pw-for-tests"  # UserFactory's password


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 60
    return settings


def token(username: str, password: str, address: str = "127.0.0.1"):
    return APIClient(REMOTE_ADDR=address).post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def test_a_username_is_locked_after_its_failures_even_for_the_right_password(limits):
    UserFactory(username="alice")
    for _ in range(3):
        assert token("alice", "guess").json()["error"]["code"] == "bad_credentials"

    refused = token("alice", RIGHT)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert token("ALICE ", RIGHT, address="10.0.0.9").status_code == 429  # any address, any case
    assert token("bob", "guess", address="10.0.0.9").status_code == 400  # others are not locked


def test_an_address_is_locked_after_its_failures_whatever_the_usernames(limits):
    UserFactory(username="carol")
    for name in ["u1", "u2", "u3", "u4", "u5"]:
        assert token(name, "guess", address="10.0.0.7").status_code == 400
    assert token("carol", RIGHT, address="10.0.0.7").status_code == 429
    assert token("carol", RIGHT, address="10.0.0.8").status_code == 200


def test_logins_work_again_when_the_window_ends(settings):
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 1
    UserFactory(username="dan")
    for _ in range(2):
        token("dan", "guess")
    assert token("dan", RIGHT).status_code in (200, 429)  # 200 if the window just ended
    wait_for(lambda: token("dan", RIGHT).status_code == 200, timeout=10, interval=0.3)


def test_the_login_form_is_limited_too(limits):
    UserFactory(username="erin")
    browser = Client()
    for _ in range(3):
        page = browser.post("/login/", {"username": "erin", "password": "guess"})
        assert page.status_code == 200
        assert b"did not match" in page.content

    page = browser.post("/login/", {"username": "erin", "password": RIGHT})
    assert page.status_code == 429
    assert 1 <= int(page["Retry-After"]) <= 60
    assert b"Too many failed logins" in page.content
    assert "_auth_user_id" not in browser.session  # the right password did not log in
    # The API and the form count the same failures.
    assert token("erin", RIGHT).status_code == 429


def test_a_successful_login_is_not_counted(limits):
    UserFactory(username="finn")
    for _ in range(10):
        assert token("finn", RIGHT).status_code == 200


def test_behind_a_trusted_proxy_the_address_comes_from_its_header(limits):
    limits.CLIENT_ADDRESS_HEADER = "HTTP_X_FORWARDED_FOR"
    UserFactory(username="gus")

    def via_proxy(client_address: str, password: str):
        return APIClient(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address).post(
            "/api/v1/auth/token/", {"username": "gus", "password": password}, format="json"
        )

    limits.LOGIN_FAILURES_PER_USERNAME = 100  # only the address limit here
    for _ in range(5):
        assert via_proxy("spoofed, 203.0.113.5", "guess").status_code == 400
    assert via_proxy("203.0.113.5", RIGHT).status_code == 429  # the proxy's last hop counts
    assert via_proxy("198.51.100.7", RIGHT).status_code == 200  # another client, same proxy
