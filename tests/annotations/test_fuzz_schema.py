"""The OpenAPI schema validates without warnings, and the running API keeps to it.

The fuzz drives the WSGI application in-process from its own schema (schemathesis), as an
annotator of a campaign with clips and as a stranger, with path ids drawn partly from real rows.
It looks for server errors and responses that break the schema (status, content type, body).
"""

from collections import Counter
from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from labelstudio_ferv.wsgi import application
from tests.factories import GoldTaskFactory, TaskFactory

pytestmark = pytest.mark.usefixtures("fast_password_hasher")

MAX_EXAMPLES = 20
# The annotator's and the stranger's fuzz: the operations they reach every day.
OPERATIONS = (
    r"^/api/v1/(auth/token/|campaigns/$|assignments/"
    r"|campaigns/\{campaign_id\}/(next|last-answer|progress|tasks|pause|resume|close|members"
    r"|audit|gold)/|campaigns/\{campaign_id\}/$)"
)


def test_the_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns any warning of the generator or the validator into an error.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


# The admin's fuzz: every operation of the API, with fewer examples each (it is the widest).
EVERY_OPERATION = r"^/api/v1/"
ADMIN_EXAMPLES = 5


def _schema(path_regex: str = OPERATIONS, max_examples: int = MAX_EXAMPLES):
    config = schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": max_examples, "deterministic": True},
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "response_headers_conformance": {"enabled": True},
            },
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=config)
    return schema.include(path_regex=path_regex)


def fuzz(
    *,
    user,
    path_ids: dict[str, int],
    check=None,
    path_regex: str = OPERATIONS,
    max_examples: int = MAX_EXAMPLES,
) -> int:
    """Fuzz every operation as ``user``, with generated ids and with ``path_ids``; return runs.

    Each operation gets positive and negative data (bodies and parameters that break the
    schema), once with the ids generated too and once with real ids, so that the happy paths
    are reached as well as the refusals.
    """
    token = Token.objects.get_or_create(user=user)[0].key
    headers = {"Authorization": f"Token {token}"}
    runs = 0
    with on_the_test_connection():
        schema = _schema(path_regex, max_examples)
        operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for fixed in ({}, {name: path_ids[name] for name in names if name in path_ids}):
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

                @settings(
                    max_examples=max_examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate],
                )
                @given(case=strategy)
                def run(case):
                    response = case.call_and_validate(headers=headers)
                    if check:
                        check(case, response)

                try:
                    with on_the_test_connection():
                        run()
                except Unsatisfiable:
                    # Nothing left to break: an operation without body or free parameter.
                    assert mode == GenerationMode.NEGATIVE
                    continue
                runs += 1
    return runs


@contextmanager
def on_the_test_connection():
    """Keep the WSGI app on the test's connection, as Django's test client does.

    The real WSGI handler closes the database connection after each request; inside the test
    transaction that would close it under the test.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def path_ids(api, alice, campaign):
    """A campaign with ordinary and gold clips, and an assignment alice holds; their ids."""
    campaign.gold_share = 0.2
    campaign.save()
    task = TaskFactory(campaign=campaign)
    TaskFactory.create_batch(30, campaign=campaign)
    GoldTaskFactory.create_batch(3, campaign=campaign)
    assignment = api(alice).post(f"/api/v1/campaigns/{campaign.pk}/next/").json()["assignment"]
    return {
        "campaign_id": campaign.pk,
        "task_id": task.pk,
        "clip_id": task.clip_id,
        "assignment_id": assignment["id"],
        "username": alice.username,
    }


@pytest.mark.django_db
def test_the_api_keeps_to_its_schema_for_an_annotator(alice, path_ids):
    seen = Counter()

    def record(case, response):
        seen[case.operation.label, response.status_code // 100] += 1

    assert fuzz(user=alice, path_ids=path_ids, check=record) > 0
    # The fuzz got past the refusals too: the annotator's loop succeeded along the way.
    for label in [
        "POST /api/v1/campaigns/{campaign_id}/next/",
        "POST /api/v1/assignments/{assignment_id}/answer/",
        "GET /api/v1/campaigns/",
    ]:
        assert seen[label, 2] > 0, (label, seen)


@pytest.mark.django_db
def test_the_api_keeps_to_its_schema_for_a_stranger(stranger, alice, path_ids):
    def learns_nothing(case, response):
        # Every campaign-scoped answer to a stranger is a refusal (a malformed id or body may
        # be refused before the campaign is looked up).
        if "{" in case.operation.path:
            assert response.status_code in (400, 404), response.text

    assert fuzz(user=stranger, path_ids=path_ids, check=learns_nothing) > 0


@pytest.fixture
def admin_path_ids(adam, alice, path_ids, campaign):
    """Besides the annotator's ids: an export job, a scored batch and a source video."""
    from annotations.models import CampaignSourceVideo, ExportJob, GoldBatch
    from clips.models import SourceVideo

    job = ExportJob.objects.create(campaign=campaign, kind=ExportJob.Kind.LABELS)
    batch = GoldBatch.objects.create(
        campaign=campaign,
        annotator=alice,
        number=1,
        size=10,
        gold_total=2,
        gold_correct=0,
        verdict=GoldBatch.Verdict.IMPROPER,
        review=GoldBatch.Review.PENDING,
    )
    scene = campaign.tasks.select_related("clip__scene").first().clip.scene
    video = SourceVideo.objects.create(scene=scene, original="sources/x.mp4", checksum="f" * 64)
    CampaignSourceVideo.objects.create(source_video=video, campaign=campaign)
    return path_ids | {"job_id": job.pk, "batch_id": batch.pk, "video_id": video.pk}


@pytest.mark.django_db
def test_every_operation_keeps_to_its_schema_for_an_admin(adam, admin_path_ids):
    seen = Counter()

    def record(case, response):
        seen[case.operation.label, response.status_code // 100] += 1

    runs = fuzz(
        user=adam,
        path_ids=admin_path_ids,
        check=record,
        path_regex=EVERY_OPERATION,
        max_examples=ADMIN_EXAMPLES,
    )
    # Every operation of the schema was tried, and the admin's reads succeeded along the way.
    operations = {label for label, _ in seen}
    assert len(operations) >= 50, sorted(operations)
    assert runs >= len(operations)
    for label in [
        "GET /api/v1/campaigns/{campaign_id}/tasks/",
        "GET /api/v1/campaigns/{campaign_id}/members/",
        "GET /api/v1/campaigns/{campaign_id}/exports/{job_id}/",
        "GET /api/v1/campaigns/{campaign_id}/source-videos/{video_id}/",
    ]:
        assert seen[label, 2] > 0, (label, seen)


def test_every_operation_that_reads_a_body_documents_its_refusals(tmp_path):
    # A body over the limit (413) or in a media type the view does not parse (415) is refused
    # before the view runs, whatever the operation: the schema says so for each of them.
    import yaml

    call_command("spectacular", "--file", str(tmp_path / "schema.yaml"))
    schema = yaml.safe_load((tmp_path / "schema.yaml").read_text())
    with_body = [
        (method, path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(with_body) >= 15
    for method, path, operation in with_body:
        assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)
        if path.endswith("/retry/"):  # JSON in, nothing else
            assert list(operation["requestBody"]["content"]) == ["application/json"], path
