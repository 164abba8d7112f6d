"""The committed OpenAPI schema (docs/openapi.yaml) must match what the code serves."""
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.real_services import require_postgresql

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@pytest.mark.django_db
def test_committed_schema_is_up_to_date(tmp_path):
    # Integer field ranges in the schema differ per database vendor; the committed one is PostgreSQL's.
    require_postgresql("Comparing the committed schema")
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert generated.read_text() == SCHEMA_FILE.read_text(), (
        "docs/openapi.yaml is stale: run `DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlhf .venv/bin/python manage.py spectacular --file docs/openapi.yaml` (field ranges differ per database vendor; the suite runs on PostgreSQL)"
    )
