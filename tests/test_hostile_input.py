"""Hostile request bodies get a 4xx in the API's JSON error shape, never a 500."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.models import ExportJob, Vote
from tests.factories import TaskFactory

pytestmark = pytest.mark.django_db

LONE_SURROGATE = '"\\ud800"'  # the JSON text of a lone UTF-16 surrogate


def raw_client(user=None) -> APIClient:
    """A client that returns a server error as a response instead of raising it."""
    client = APIClient(raise_request_exception=False)
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def post_raw(client: APIClient, path: str, body: str, method: str = "post"):
    send = getattr(client, method)
    return send(path, data=body.encode("ascii"), content_type="application/json")


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"username": "alice", "password": ' + "[" * 40 + "]" * 40 + "}",  # parses, too deep
    ],
    ids=["100000-arrays", "5000-objects", "40-levels"],
)
def test_deeply_nested_json_is_a_400_even_without_a_login(body):
    response = post_raw(raw_client(), "/api/v1/auth/token/", body)
    assert_error_shape(response, 400, "parse_error")


def test_ordinary_nesting_still_parses(api, adam, campaign):
    response = api(adam).post(
        f"/api/v1/campaigns/{campaign.pk}/exports/",
        {"kind": "labels", "params": {"include_gold": False}},
        format="json",
    )
    assert response.status_code in (201, 202)


def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(alice, adam, campaign):
    task = TaskFactory(campaign=campaign)
    offer = raw_client(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    assignment = offer["assignment"]["id"]
    base = f"/api/v1/campaigns/{campaign.pk}"
    cases = [
        (alice, f"/api/v1/assignments/{assignment}/answer/", f'{{"label": {LONE_SURROGATE}}}'),
        (alice, "/api/v1/auth/token/", f'{{"username": {LONE_SURROGATE}, "password": "x"}}'),
        (adam, f"{base}/tasks/{task.pk}/gold/", f'{{"gold_label": {LONE_SURROGATE}}}', "put"),
        (adam, f"{base}/exports/", f'{{"kind": {LONE_SURROGATE}}}'),
        (adam, f"{base}/exports/", f'{{"kind": "labels", "params": {{{LONE_SURROGATE}: 1}}}}'),
        (
            adam,
            f"{base}/review/tasks/{task.pk}/decisions/",
            f'{{"action": {LONE_SURROGATE}, "version": 0}}',
        ),
    ]
    for user, path, body, *method in cases:
        response = post_raw(raw_client(user), path, body, *method)
        assert_error_shape(response, 400, "parse_error")
    assert not Vote.objects.exists()
    assert not ExportJob.objects.exists()


def test_a_valid_surrogate_pair_is_text_and_only_fails_validation(alice, campaign):
    TaskFactory(campaign=campaign)
    offer = raw_client(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    path = f"/api/v1/assignments/{offer['assignment']['id']}/answer/"
    response = post_raw(raw_client(alice), path, '{"label": "\\ud83d\\ude00"}')
    assert_error_shape(response, 400, "invalid")


def test_a_body_over_the_limit_is_a_413_in_the_error_shape(settings):
    body = '{"username": "' + "a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 2 * 1024**2) + '"}'
    response = post_raw(raw_client(), "/api/v1/auth/token/", body)
    assert_error_shape(response, 413, "too_large")


def test_api_errors_outside_views_are_json_and_pages_stay_html(settings):
    settings.ROOT_URLCONF = "tests.urls_failing"
    client = raw_client()
    assert_error_shape(client.get("/api/v1/failing/"), 500, "server_error")
    assert_error_shape(client.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error_shape(client.get("/api/v1/health/", HTTP_HOST="evil.example"), 400, "bad_request")
    page = client.get("/failing/")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
    assert client.get("/no-such-page/")["Content-Type"].startswith("text/html")


HOSTILE_BODIES = {
    "deep-arrays": "[" * 50_000 + "]" * 50_000,
    "deep-objects": '{"a":' * 2_000 + "1" + "}" * 2_000,
    "surrogate-value": '{"label": ' + LONE_SURROGATE + ', "kind": ' + LONE_SURROGATE + "}",
    "surrogate-key": "{" + LONE_SURROGATE + ": 1}",
    "not-json": "{label: happy",
}


def test_every_operation_that_reads_json_refuses_hostile_bodies(tmp_path, alice, adam, campaign):
    # Every operation of the schema whose body is JSON, with real ids in its path, as an admin
    # of the campaign (so the body is read): each hostile body is a 4xx in the error shape.
    import yaml
    from django.core.management import call_command

    task = TaskFactory(campaign=campaign)
    offer = raw_client(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()
    ids = {
        "campaign_id": campaign.pk,
        "task_id": task.pk,
        "assignment_id": offer["assignment"]["id"],
        "username": "alice",
        "batch_id": 1,
        "video_id": 1,
    }
    call_command("spectacular", "--file", str(tmp_path / "schema.yaml"))
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    tried = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = (
                operation.get("requestBody", {}).get("content", {})
                if isinstance(operation, dict)
                else {}
            )
            if "application/json" not in content:
                continue
            url = path.format(**ids)
            user = alice if "/assignments/" in path else adam
            for name, body in HOSTILE_BODIES.items():
                response = post_raw(raw_client(user), url, body, method)
                assert 400 <= response.status_code < 500, (
                    method,
                    path,
                    name,
                    response.content[:200],
                )
                assert response["Content-Type"].startswith("application/json"), (method, path)
                assert response.json()["error"]["message"], (method, path, name)
                tried += 1
    assert tried >= 15 * len(HOSTILE_BODIES)
    assert not Vote.objects.exists()
    assert not ExportJob.objects.exists()
