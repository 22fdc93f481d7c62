"""The review and export API keeps to its OpenAPI schema, for a reviewer and for a stranger.

Schemathesis drives the WSGI application in-process from the schema, with positive and
negative data, once with generated path ids and once with real ones; it looks for server
errors and responses that break the schema.
"""

from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode

from annotations.models import ExportJob, GoldBatch
from labelstudio_ferv.expressions import Answer
from labelstudio_ferv.wsgi import application
from tests.factories import UserFactory, voted_task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hasher")]

MAX_EXAMPLES = 8
OPERATIONS = r"^/api/v1/campaigns/\{campaign_id\}/(review|exports)/"


def _operations():
    config = schemathesis.Config.from_dict(
        {
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "status_code_conformance": {"enabled": True},
                "content_type_conformance": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
            },
        }
    )
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=config)
    return [r.ok() for r in schema.include(path_regex=OPERATIONS).get_all_operations()]


def fuzz(*, user, path_ids: dict[str, int], check) -> None:
    headers = {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}
    # The WSGI handler closes the connection after each request: not the test's connection.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        for operation in _operations():
            names = {p.name for p in operation.path_parameters}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for fixed in ({}, {name: path_ids[name] for name in names}):
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

                    @settings(
                        max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                        suppress_health_check=list(HealthCheck),
                        phases=[Phase.explicit, Phase.generate],
                    )  # fmt: skip
                    @given(case=strategy)
                    def run(case):
                        check(case, case.call_and_validate(headers=headers))

                    try:
                        run()
                    except Unsatisfiable:  # nothing to break in this operation
                        assert mode == GenerationMode.NEGATIVE
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def path_ids(campaign, rita, alice):
    voters = [UserFactory(username=f"voter{i}") for i in range(5)]
    answers = [Answer.FEAR, Answer.SURPRISE, Answer.FEAR, Answer.SURPRISE, Answer.NEUTRAL]
    task = voted_task(campaign, answers, voters)
    batch = GoldBatch.objects.create(
        campaign=campaign, annotator=alice, number=1, size=10, gold_total=5, gold_correct=3,
        verdict="improper", review="pending",
    )  # fmt: skip
    job = ExportJob.objects.create(campaign=campaign, kind="labels")
    return {"campaign_id": campaign.pk, "task_id": task.pk, "batch_id": batch.pk, "job_id": job.pk}


def test_the_review_api_keeps_to_its_schema_for_a_reviewer(rita, path_ids):
    seen = Counter()

    def record(case, response):
        seen[case.operation.label, response.status_code // 100] += 1

    fuzz(user=rita, path_ids=path_ids, check=record)
    for label in [
        "GET /api/v1/campaigns/{campaign_id}/review/queue/",
        "GET /api/v1/campaigns/{campaign_id}/review/tasks/{task_id}/",
        "GET /api/v1/campaigns/{campaign_id}/exports/{job_id}/",
    ]:
        assert seen[label, 2] > 0, (label, seen)


def test_the_review_api_tells_a_stranger_nothing(stranger, path_ids):
    def learns_nothing(case, response):
        assert response.status_code in (400, 404), response.text

    fuzz(user=stranger, path_ids=path_ids, check=learns_nothing)
