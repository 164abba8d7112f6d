"""Schema-driven fuzzing: every documented operation, as an admin and as an annotator.

Schemathesis generates requests from the schema the app serves (valid ones and ones that
break it) and sends them in-process through WSGI; every answer must be no server error,
with a documented status code, content type and body. Bounded and derandomized: a few
minutes on a 2-core machine, the same cases every run.

Exclusions: none. ``POST /api/auth/token/`` is fuzzed with generated usernames, which
never match a real account, so django-axes' per-username lockout cannot lock out the
users below (and the database is flushed after each test). Token revoke and rotate are
fuzzed too: the token is re-read for every case.
"""
import json
import re
import uuid
from functools import cache

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

MAX_EXAMPLES = 25
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@cache
def api_schema():
    """The schema the app serves right now (not the committed file), loaded into schemathesis."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    from config.wsgi import application

    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))
    schema = schemathesis.openapi.from_dict(document)
    schema.app = application
    return schema


def operation_labels() -> list[str]:
    return sorted(result.ok().label for result in api_schema().get_all_operations())


@pytest.fixture(autouse=True, scope="module")
def hypothesis_home(tmp_path_factory):
    """Hypothesis caches what it learns in ./.hypothesis; keep the checkout clean."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.fixture
def world(make_user, make_project, sent_tasks, settings):
    """Something for every id in a path to point at: a project with items, a leased
    assignment, a label, a champion model version; an admin and an annotator member."""
    from annotation.assignment import assignment_claim_next
    from annotation.services import label_submit
    from training import services

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    settings.EVENT_STREAM_SECONDS = 0.2  # each event stream the fuzzer opens would otherwise last 30 s
    admin = make_user("fuzz-admin", admin=True)
    annotator = make_user("fuzz-annotator")
    project = make_project("Fuzzed", annotators=[annotator], prompts=4)
    labelled = assignment_claim_next(project=project, annotator=annotator)
    label, _ = label_submit(assignment_id=labelled.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    leased = assignment_claim_next(project=project, annotator=annotator)
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="fuzzed/v1", metrics={"accuracy": 0.8},
        champion_metrics={}, promote=True, config={}, seed=0, code_version="test",
    )
    ids = {
        "project_id": project.id,
        "assignment_id": leased.id,
        "label_id": label.id,
        "version_id": version.id,
        "item_id": label.item_id,
        "user_id": annotator.id,
        "annotator_id": annotator.id,
    }
    return {"admin": admin, "annotator": annotator, "ids": ids}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["admin", "annotator"])
@pytest.mark.parametrize("label", operation_labels())
def test_operation_answers_as_documented(label, role, world):
    from rest_framework.authtoken.models import Token

    operation = api_schema().find_operation_by_label(label)
    user = world[role]
    names = re.findall(r"{(\w+)}", operation.path)
    # Half the cases aim at objects that exist; the rest at generated (mostly missing) ids.
    existing = {name: world["ids"][name] for name in names}
    strategy = st.one_of(
        operation.as_strategy(path_parameters=existing),
        operation.as_strategy(),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=existing),
    )
    failures: dict[str, str] = {}

    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def fuzz(case):
        # Re-read every time: a fuzzed revoke or rotate replaces the user's token.
        token, _ = Token.objects.get_or_create(user=user)
        try:
            case.call_and_validate(headers={"Authorization": f"Token {token.key}"}, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                failures.setdefault(failure.title, str(group))

    fuzz()
    assert not failures, "\n\n".join(failures.values())
