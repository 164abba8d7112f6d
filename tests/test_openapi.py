"""The committed OpenAPI schema (docs/openapi.yaml) must match what the code serves."""
from pathlib import Path

import pytest
from django.core.management import call_command

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


@pytest.mark.django_db
def test_committed_schema_is_up_to_date(tmp_path):
    generated = tmp_path / "openapi.yaml"
    call_command("spectacular", "--file", str(generated), "--validate", "--fail-on-warn")
    assert generated.read_text() == SCHEMA_FILE.read_text(), (
        "docs/openapi.yaml is stale: run `DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlhf .venv/bin/python manage.py spectacular --file docs/openapi.yaml` (field ranges differ per database vendor; the suite runs on PostgreSQL)"
    )
