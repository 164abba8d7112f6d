"""Tests that need a real server skip with the reason when it is missing, except under
``scripts/test`` (RLHF_REQUIRE_REAL_SERVICES=1), where a skip would hide a test CI must run."""
import os

import pytest
from django.conf import settings
from django.db import connection


def _missing(reason: str) -> None:
    if os.environ.get("RLHF_REQUIRE_REAL_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def require_postgresql(why: str) -> None:
    if connection.vendor != "postgresql":
        _missing(f"{why} needs PostgreSQL: run it through scripts/test (DATABASE_URL=postgres://...).")


def require_redis(why: str) -> None:
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        _missing(f"{why} needs Redis: run it through scripts/test (CELERY_BROKER_URL=redis://...).")
