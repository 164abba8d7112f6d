"""Settings come from the environment; production refuses to run without a secret key."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url

REPO = Path(__file__).resolve().parent.parent


PRINT_DATABASE_AND_BROKER = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
OWN_VARIABLES = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_ENV", "MODEL_STORE_URL", "MODEL_STORE_S3_ENDPOINT_URL"}


def run_settings(code: str = PRINT_DATABASE_AND_BROKER, **env):
    """Run ``code`` in a fresh interpreter after django.setup(), with ``env`` instead of this process's settings variables."""
    script = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='config.settings'; django.setup(); " + code
    clean = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    return subprocess.run([sys.executable, "-c", script], cwd=REPO, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_embedded_defaults_need_no_servers(tmp_path):
    result = run_settings(RLHF_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://"]


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = run_settings(DJANGO_ENV="production", RLHF_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_ENV=production" in result.stderr

    ok = run_settings(DJANGO_ENV="production", DJANGO_SECRET_KEY="x" * 50, RLHF_VAR_DIR=str(tmp_path))
    assert ok.returncode == 0, ok.stderr


def test_database_url_parsing(tmp_path):
    pg = database_from_url("postgres://rlhf:s%40cret@db.internal:6543/labels?sslmode=require", base_dir=tmp_path)
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql", "labels", "rlhf", "s@cret", "db.internal", "6543",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert database_from_url("sqlite:///var/x.db", base_dir=tmp_path)["NAME"] == str(tmp_path / "var/x.db")
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        database_from_url("mysql://x/y", base_dir=tmp_path)


def test_trainer_settings_come_from_the_environment(tmp_path):
    code = "from django.conf import settings; t = settings.REWARD_TRAINING; print(t['batch_size'], t['group_by_length'])"
    assert run_settings(code, RLHF_VAR_DIR=str(tmp_path)).stdout.split() == ["8", "False"]
    chosen = run_settings(code, RLHF_VAR_DIR=str(tmp_path), REWARD_BATCH_SIZE="16", REWARD_GROUP_BY_LENGTH="true")
    assert chosen.stdout.split() == ["16", "True"], chosen.stderr
