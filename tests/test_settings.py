"""Settings come from the environment; production refuses to run without a secret key or allowed hosts."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url

REPO = Path(__file__).resolve().parent.parent


PRINT_DATABASE_AND_BROKER = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
OWN_VARIABLES = {
    "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "DJANGO_ENV", "MODEL_STORE_URL", "MODEL_STORE_S3_ENDPOINT_URL",
    "DJANGO_ALLOWED_HOSTS", "DJANGO_DEBUG", "DJANGO_SECURE_COOKIES", "DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "DJANGO_SECURE_HSTS_PRELOAD", "DJANGO_SECURE_PROXY_SSL_HEADER", "API_SCHEMA_PUBLIC",
}
PRODUCTION = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50, "DJANGO_ALLOWED_HOSTS": "labels.example.org"}


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

    ok = run_settings(RLHF_VAR_DIR=str(tmp_path), **PRODUCTION)
    assert ok.returncode == 0, ok.stderr


def test_production_without_allowed_hosts_refuses_to_start(tmp_path):
    result = run_settings(DJANGO_ENV="production", DJANGO_SECRET_KEY="x" * 50, RLHF_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_ALLOWED_HOSTS must be set when DJANGO_ENV=production" in result.stderr


SECURITY = (
    "from django.conf import settings as s; "
    "print(s.DEBUG, s.ALLOWED_HOSTS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_PROXY_SSL_HEADER, s.API_SCHEMA_PUBLIC, "
    "s.REST_FRAMEWORK['DEFAULT_RENDERER_CLASSES'], s.REST_FRAMEWORK['DEFAULT_PARSER_CLASSES'][0], sep='|')"
)


def test_production_security_defaults(tmp_path):
    result = run_settings(SECURITY, RLHF_VAR_DIR=str(tmp_path), **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|") == [
        "False", "['labels.example.org']", "True", "True", "False", "0", "False", "None", "False",
        "['rest_framework.renderers.JSONRenderer']", "config.parsers.JSONParser",
    ]


def test_development_security_defaults(tmp_path):
    result = run_settings(SECURITY, RLHF_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    values = result.stdout.strip().split("|")
    assert values[:9] == ["True", "['*']", "False", "False", "False", "0", "False", "None", "True"]
    assert "rest_framework.renderers.BrowsableAPIRenderer" in values[9]
    assert values[10] == "config.parsers.JSONParser"


def test_https_settings_come_from_the_environment(tmp_path):
    result = run_settings(
        SECURITY, RLHF_VAR_DIR=str(tmp_path), **PRODUCTION,
        DJANGO_SECURE_SSL_REDIRECT="true", DJANGO_SECURE_HSTS_SECONDS="31536000", DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", API_SCHEMA_PUBLIC="true",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|")[4:9] == ["True", "31536000", "True", "('HTTP_X_FORWARDED_PROTO', 'https')", "True"]

    bad = run_settings(SECURITY, RLHF_VAR_DIR=str(tmp_path), **PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    assert bad.returncode != 0 and "DJANGO_SECURE_PROXY_SSL_HEADER must be HEADER,value" in bad.stderr


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
    code = ("from django.conf import settings; t = settings.REWARD_TRAINING; "
            "print(t['batch_size'], t['group_by_length'], t['num_epochs'], t['frozen_layers'])")
    # One epoch by default: the recipe sweep found more overfit (docs/benchmarks.md).
    assert run_settings(code, RLHF_VAR_DIR=str(tmp_path)).stdout.split() == ["8", "False", "1", "2"]
    chosen = run_settings(code, RLHF_VAR_DIR=str(tmp_path), REWARD_BATCH_SIZE="16", REWARD_GROUP_BY_LENGTH="true",
                          REWARD_EPOCHS="2", REWARD_FROZEN_LAYERS="3")
    assert chosen.stdout.split() == ["16", "True", "2", "3"], chosen.stderr


def test_beat_intervals_must_be_positive(tmp_path):
    code = "from django.conf import settings; print(settings.CELERY_BEAT_SCHEDULE['request-label-runs']['schedule'])"
    # The label trigger ticks every few seconds by default, so an incremental update starts soon after its label.
    assert run_settings(code, RLHF_VAR_DIR=str(tmp_path)).stdout.split() == ["5.0"]
    for name in ("TRAINING_LABEL_TRIGGER_SECONDS", "TRAINING_RECONCILE_SECONDS"):
        result = run_settings(code, RLHF_VAR_DIR=str(tmp_path), **{name: "0"})
        assert result.returncode != 0
        assert f"{name}=0.0 must be a number of seconds above 0" in result.stderr
