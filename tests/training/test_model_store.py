"""The model store's interface, the local-folder backend, and choosing a backend from settings."""
import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import s3_location
from tests.test_settings import run_settings
from training import model_store
from training.ml.model import build_tiny_model, load_reward_model

METADATA = {"config": {"seed": 0}, "data_sha256": "cd" * 32, "code_version": "abc123"}


def test_local_folder_is_the_default_and_versions_are_never_replaced(settings, tmp_path):
    settings.MODEL_STORE_URL = ""
    settings.MODEL_STORE_DIR = tmp_path / "models"
    model, tokenizer = load_reward_model(build_tiny_model(tmp_path / "tiny"), "cpu")

    name = model_store.save(model, tokenizer, project_id=4, version=2, metadata=METADATA)
    assert name == model_store.relative_name(project_id=4, version=2) == "project-4/v2"
    assert model_store.local_path(name) == str(tmp_path / "models" / "project-4" / "v2")
    assert (tmp_path / "models" / "project-4" / "v2" / "model.safetensors").is_file()
    with pytest.raises(FileExistsError):
        model_store.save(model, tokenizer, project_id=4, version=2, metadata=METADATA)
    assert sorted(path.name for path in (tmp_path / "models" / "project-4").iterdir()) == ["v2"]


def test_the_local_store_does_not_import_boto3(tmp_path):
    code = (
        "import sys; from training import model_store; "
        "model_store.local_path('project-1/v1'); print(sorted({'boto3', 'botocore'} & set(sys.modules)))"
    )
    result = run_settings(code=code, RLHF_VAR_DIR=str(tmp_path), MODEL_STORE_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "url, bucket, prefix",
    [
        ("s3://models", "models", ""),
        ("s3://models/", "models", ""),
        ("s3://rlhf.checkpoints/team-a/reward/", "rlhf.checkpoints", "team-a/reward"),
    ],
)
def test_s3_urls_give_bucket_and_prefix(url, bucket, prefix):
    assert s3_location("MODEL_STORE_URL", url) == (bucket, prefix)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("/srv/models", "the scheme must be s3://"),
        ("https://models.s3.amazonaws.com/x", "the scheme must be s3://"),
        ("s3:/models", "there is no bucket name"),
        ("s3://", "there is no bucket name"),
        ("s3://My_Models", "'My_Models' is not a bucket name"),
        ("s3://key:secret@models", "is not a bucket name"),
        ("s3://models/a?versionId=3", "query or fragment"),
        ("s3://models/a//b", "empty, '.' or '..' segment"),
        ("s3://models/a/../b", "empty, '.' or '..' segment"),
    ],
)
def test_a_malformed_store_url_is_refused_with_the_reason(url, problem):
    with pytest.raises(ImproperlyConfigured, match="MODEL_STORE_URL=") as raised:
        s3_location("MODEL_STORE_URL", url)
    assert problem in str(raised.value) and "Use s3://bucket or s3://bucket/prefix" in str(raised.value)


def test_a_malformed_store_url_stops_every_process_at_start(tmp_path):
    result = run_settings(RLHF_VAR_DIR=str(tmp_path), MODEL_STORE_URL="s3:/models")
    assert result.returncode != 0
    assert "MODEL_STORE_URL='s3:/models': there is no bucket name" in result.stderr

    result = run_settings(RLHF_VAR_DIR=str(tmp_path), MODEL_STORE_URL="s3://models", MODEL_STORE_S3_ENDPOINT_URL="minio:9000")
    assert result.returncode != 0
    assert "MODEL_STORE_S3_ENDPOINT_URL='minio:9000' must be an http:// or https:// URL" in result.stderr

    ok = run_settings(RLHF_VAR_DIR=str(tmp_path), MODEL_STORE_URL="s3://models/reward", MODEL_STORE_S3_ENDPOINT_URL="http://minio:9000")
    assert ok.returncode == 0, ok.stderr
