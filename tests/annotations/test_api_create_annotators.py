"""Onboarding a team: the create_annotators command makes accounts and writes their tokens."""

import csv
import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotations.models import Membership
from tests.factories import CampaignFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]


def test_accounts_are_created_joined_and_their_tokens_work(tmp_path, campaign):
    path = tmp_path / "team.csv"
    call_command("create_annotators", str(campaign.pk), "--count", "3", "--output", str(path))

    rows = list(csv.DictReader(path.open()))
    assert [r["username"] for r in rows] == ["annotator001", "annotator002", "annotator003"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # tokens are secrets
    roles = set(Membership.objects.filter(campaign=campaign).values_list("user__username", "role"))
    assert roles == {(r["username"], "annotator") for r in rows}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {rows[0]['token']}")
    assert client.get("/api/v1/campaigns/").json()[0]["id"] == campaign.pk
    assert rows[0]["password"] == ""  # API-only accounts by default


def test_running_it_again_reuses_accounts_and_keeps_roles(tmp_path, campaign, adam):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    call_command(
        "create_annotators", campaign.name, "--usernames", "zoe", "adam", "--output", str(first)
    )
    call_command(
        "create_annotators", campaign.name, "--usernames", "zoe", "adam", "--output", str(second)
    )
    assert json.loads(first.read_text()) == json.loads(second.read_text())
    assert Membership.objects.get(campaign=campaign, user=adam).role == "admin"  # not demoted


def test_new_accounts_may_get_a_password_for_the_browser(tmp_path, campaign):
    path = tmp_path / "team.json"
    call_command(
        "create_annotators", str(campaign.pk), "--usernames", "yan", "--passwords",
        "--output", str(path),
    )  # fmt: skip
    (row,) = json.loads(path.read_text())
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "yan", "password": row["password"]}, format="json"
    )
    assert response.json()["token"] == row["token"]


def test_an_unknown_campaign_is_refused(tmp_path):
    CampaignFactory(name="Other")
    UserFactory(username="existing")
    with pytest.raises(CommandError, match="No campaign"):
        call_command(
            "create_annotators", "Nope", "--count", "2", "--output", str(tmp_path / "x.csv")
        )
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("bad", ["=1+2", "tab\there", 'quo"te', "it's", "+1", "@home", ""])
def test_unsafe_usernames_are_refused_with_a_clear_error_and_nothing_is_created(
    tmp_path, campaign, bad
):
    path = tmp_path / "team.csv"
    with pytest.raises(CommandError, match="Usernames must start with a letter or digit"):
        call_command(
            "create_annotators", str(campaign.pk), "--usernames", "good1", bad,
            "--output", str(path),
        )  # fmt: skip
    assert not path.exists()
    assert not Membership.objects.filter(campaign=campaign).exists()
    assert not get_user_model().objects.filter(username="good1").exists()


def test_ordinary_usernames_are_accepted(tmp_path, campaign):
    names = ["anna.k", "b_2", "c-3", "d+e@lab.org"]
    call_command(
        "create_annotators", str(campaign.pk), "--usernames", *names,
        "--output", str(tmp_path / "t.csv"),
    )  # fmt: skip
    assert Membership.objects.filter(campaign=campaign).count() == 4
