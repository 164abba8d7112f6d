"""The model store on S3-compatible object storage, against a real S3 HTTP server in another process.

The server is moto's standalone S3 server (``python -m moto.server``), reached over
HTTP by the same boto3 code that talks to AWS, MinIO or R2 in production. It is
neither of those: these tests pin the store's protocol (manifest last, verified
downloads, an atomic cache), not one provider's quirks. Each test gets its own
bucket, and a fresh MODEL_CACHE_DIR stands for another machine.
"""
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import torch
from django.core.management import call_command

from tests.integration.test_training_loop import labelled_toy_project
from training import model_store
from training.ml.checkpoint import load_checkpoint_metadata
from training.ml.model import build_tiny_model, load_reward_model
from training.ml.scoring import score_responses
from training.model_store import CheckpointCorrupt, CheckpointExists, CheckpointNotFound

ITEMS = [([{"role": "user", "content": "tell me a poem"}], "good answer"), ([], "rude")]
METADATA = {"config": {"seed": 0}, "data_sha256": "ef" * 32, "code_version": "abc123"}


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """``http://127.0.0.1:<port>`` of a moto S3 server, one for the session; fake credentials in the environment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with pytest.MonkeyPatch.context() as patch, log_path.open("wb") as log:
        # boto3's standard chain reads these; nothing from the machine's own AWS setup may leak in.
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
            patch.delenv(variable, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto's S3 server did not start:\n{log_path.read_text(errors='replace')}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def s3(settings, s3_endpoint, tmp_path):
    """A new bucket configured as the model store, and a client of our own to look inside it."""
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    settings.MODEL_STORE_URL = f"s3://{bucket}/reward"
    settings.MODEL_STORE_S3_ENDPOINT_URL = s3_endpoint
    settings.MODEL_STORE_S3_REGION = "us-east-1"
    settings.MODEL_CACHE_DIR = tmp_path / "machine-a"

    def keys():
        return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", ()))

    def move_to_another_machine():
        settings.MODEL_CACHE_DIR = tmp_path / f"machine-{uuid.uuid4().hex[:6]}"
        return settings.MODEL_CACHE_DIR

    return SimpleNamespace(bucket=bucket, client=client, keys=keys, move_to_another_machine=move_to_another_machine)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def tiny_model(tiny_model_path):
    return load_reward_model(tiny_model_path, "cpu")


def calls_to(operation: str, *, fail_on: int | None = None) -> list[str]:
    """Record the Key of every ``operation`` call the store's client makes; raise on call ``fail_on`` (1-based)."""
    keys = []

    def record(params, **kwargs):
        keys.append(params.get("Key"))
        if len(keys) == fail_on:
            raise ConnectionResetError("fault injected: the connection dropped mid-upload")

    model_store.backend().client.meta.events.register(f"before-parameter-build.s3.{operation}", record)
    return keys


def cache_entries(cache_dir):
    """Everything in the cache's project-1 folder, temporary folders included."""
    folder = next(cache_dir.rglob("project-1"), None)
    return sorted(path.name for path in folder.iterdir()) if folder else []


def test_saved_on_one_machine_loads_on_another_with_the_same_weights_and_scores(s3, tiny_model):
    model, tokenizer = tiny_model
    uploads = calls_to("PutObject")
    name = model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert name == "project-1/v1"

    # The manifest names every uploaded file with its size and sha256, and went up last.
    manifest = json.loads(s3.client.get_object(Bucket=s3.bucket, Key="reward/project-1/v1/MANIFEST.json")["Body"].read())
    files = {entry["path"]: entry for entry in manifest["files"]}
    assert {"model.safetensors", "config.json", "reward_metadata.json"} <= set(files)
    assert uploads[-1] == "reward/project-1/v1/MANIFEST.json"
    assert uploads[:-1] == [f"reward/project-1/v1/{manifest['attempt']}/{path}" for path in sorted(files)]
    assert s3.keys() == sorted(uploads)

    # The saving worker has it cached already: no download.
    downloads = calls_to("GetObject")
    saver_path = model_store.local_path(name)
    assert downloads == []

    reader_cache = s3.move_to_another_machine()
    reader_path = model_store.local_path(name)
    assert reader_path == str(reader_cache / s3.bucket / "reward" / "project-1" / "v1")
    assert load_checkpoint_metadata(reader_path) == METADATA
    for path, entry in files.items():
        assert (reader_cache / s3.bucket / "reward" / name / path).stat().st_size == entry["size"]
    reloaded, reloaded_tokenizer = load_reward_model(reader_path, "cpu")
    for (key, weight), (reloaded_key, reloaded_weight) in zip(model.state_dict().items(), reloaded.state_dict().items(), strict=True):
        assert key == reloaded_key and torch.equal(weight, reloaded_weight)
    assert score_responses(reloaded, reloaded_tokenizer, ITEMS, max_length=32) == pytest.approx(
        score_responses(model, tokenizer, ITEMS, max_length=32), abs=1e-6
    )
    # Both caches hold the files plus the manifest they were checked against.
    assert Path(reader_path, "MANIFEST.json").read_bytes() == Path(saver_path, "MANIFEST.json").read_bytes()
    assert cache_entries(reader_cache) == ["v1"]

    # Cached: the next load asks S3 nothing.
    downloads = calls_to("GetObject")
    assert model_store.local_path(name) == reader_path and downloads == []


def test_an_interrupted_upload_publishes_nothing_and_a_retry_succeeds(s3, tiny_model):
    model, tokenizer = tiny_model
    uploads = calls_to("PutObject", fail_on=3)
    with pytest.raises(ConnectionResetError, match="fault injected"):
        model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert len(uploads) == 3 and not any(key.endswith("MANIFEST.json") for key in uploads)

    # Not visible anywhere: not in the saver's cache, not to another machine; the failed attempt is cleared.
    assert s3.keys() == []
    assert cache_entries(model_store.backend().cache_root) == []
    for _machine in ("saver", "reader"):
        with pytest.raises(CheckpointNotFound, match=rf"s3://{s3.bucket}/reward/project-1/v1/MANIFEST.json does not exist"):
            model_store.local_path("project-1/v1")
        s3.move_to_another_machine()

    model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    s3.move_to_another_machine()
    assert load_checkpoint_metadata(model_store.local_path("project-1/v1")) == METADATA


def test_a_worker_killed_mid_upload_leaves_nothing_visible_and_the_retry_clears_it(s3, tiny_model):
    model, tokenizer = tiny_model
    # What a SIGKILLed worker leaves: some files of an attempt, no manifest, no clean-up.
    abandoned = f"reward/project-1/v1/{uuid.uuid4().hex}"
    s3.client.put_object(Bucket=s3.bucket, Key=f"{abandoned}/config.json", Body=b"{}")
    s3.client.put_object(Bucket=s3.bucket, Key=f"{abandoned}/model.safetensors", Body=b"half a model")
    with pytest.raises(CheckpointNotFound, match="never saved, or its upload did not finish"):
        model_store.local_path("project-1/v1")

    model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert not any(key.startswith(abandoned) for key in s3.keys())
    s3.move_to_another_machine()
    reloaded, _ = load_reward_model(model_store.local_path("project-1/v1"), "cpu")
    assert torch.equal(reloaded.classifier.weight, model.classifier.weight)


def test_a_cached_folder_the_store_never_published_is_replaced_on_save(s3, tiny_model):
    # A bucket emptied while this machine kept its cache: the cached v1 is not the v1 about to be saved.
    model, tokenizer = tiny_model
    stale = model_store.backend().cache_root / "project-1" / "v1"
    stale.mkdir(parents=True)
    (stale / "reward_metadata.json").write_text('{"stale": true}')

    model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert load_checkpoint_metadata(model_store.local_path("project-1/v1")) == METADATA
    assert cache_entries(model_store.backend().cache_root) == ["v1"]


def test_a_published_version_is_never_overwritten(s3, tiny_model, monkeypatch):
    model, tokenizer = tiny_model
    model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    published = {key: s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() for key in s3.keys()}

    with torch.no_grad():
        model.classifier.weight.add_(1.0)
    uploads = calls_to("PutObject")
    with pytest.raises(CheckpointExists, match=rf"'project-1/v1' is already published \(s3://{s3.bucket}/reward/project-1/v1/MANIFEST.json exists\)"):
        model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert uploads == []

    # Two workers racing past that check: the manifest is written only if absent, and the loser's
    # files went to an attempt folder of their own, which it clears.
    monkeypatch.setattr(type(model_store.backend()), "_manifest_exists", lambda self, name: False)
    with pytest.raises(CheckpointExists, match="already published"):
        model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    assert uploads[-1].endswith("MANIFEST.json") and len(uploads) > 1
    assert {key: s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read() for key in s3.keys()} == published


def test_a_corrupted_download_is_rejected_and_not_cached(s3, tiny_model):
    model, tokenizer = tiny_model
    model_store.save(model, tokenizer, project_id=1, version=1, metadata=METADATA)
    weights_key = next(key for key in s3.keys() if key.endswith("/model.safetensors"))
    good = s3.client.get_object(Bucket=s3.bucket, Key=weights_key)["Body"].read()
    flipped = bytes([good[-1] ^ 0xFF])
    s3.client.put_object(Bucket=s3.bucket, Key=weights_key, Body=good[:-1] + flipped)  # same size, one byte off

    reader_cache = s3.move_to_another_machine()
    with pytest.raises(CheckpointCorrupt, match=rf"s3://{s3.bucket}/{weights_key} downloaded as {len(good)} bytes with sha256 [0-9a-f]{{64}}, but its manifest records"):
        model_store.local_path("project-1/v1")
    assert cache_entries(reader_cache) == []

    s3.client.put_object(Bucket=s3.bucket, Key=weights_key, Body=good)
    assert load_checkpoint_metadata(model_store.local_path("project-1/v1")) == METADATA


@pytest.mark.parametrize(
    "manifest",
    [
        b"not json",
        json.dumps({"format": 1, "name": "project-1/v1", "attempt": "0" * 32, "files": [{"path": "../../outside", "size": 1, "sha256": "x"}]}).encode(),
        json.dumps({"format": 1, "name": "project-1/v2", "attempt": "0" * 32, "files": []}).encode(),
        json.dumps({"format": 1, "name": "project-1/v1", "attempt": "../x", "files": []}).encode(),
    ],
    ids=["not-json", "path-escapes-the-folder", "another-version", "attempt-escapes"],
)
def test_an_unusable_manifest_is_refused(s3, manifest):
    s3.client.put_object(Bucket=s3.bucket, Key="reward/project-1/v1/MANIFEST.json", Body=manifest)
    with pytest.raises(CheckpointCorrupt, match="is not a valid format-1 manifest of checkpoint 'project-1/v1'"):
        model_store.local_path("project-1/v1")
    assert cache_entries(model_store.backend().cache_root) == []


@pytest.mark.django_db
def test_a_training_run_publishes_to_s3_and_another_machine_rescores_from_it(s3, settings, django_user_model, tmp_path, sent_tasks):
    from training import pipeline
    from training.models import ModelVersion, ResponseScore

    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.TRAINING_PROCESSES = 1
    settings.MODEL_STORE_DIR = tmp_path / "local-models"  # must stay unused
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")
    settings.REWARD_TRAINING = {"num_epochs": 2, "batch_size": 4, "learning_rate": 5e-4, "seed": 0, "max_length": 64}
    project = labelled_toy_project(django_user_model, name="S3", prompts=8)

    call_command("train_reward_model", "S3", "--wait")
    version = ModelVersion.objects.get(project=project)
    assert version.checkpoint_path == f"project-{project.id}/v1"
    assert f"reward/project-{project.id}/v1/MANIFEST.json" in s3.keys()
    assert not (tmp_path / "local-models" / version.checkpoint_path).exists()
    trainer_model, trainer_tokenizer = load_reward_model(model_store.local_path(version.checkpoint_path), "cpu")

    # A scoring worker elsewhere: empty cache, downloads the champion from S3.
    reader_cache = s3.move_to_another_machine()
    assert pipeline.rescore_project_responses(version.id) == 16
    assert (reader_cache / s3.bucket / "reward" / version.checkpoint_path / "model.safetensors").is_file()
    assert load_checkpoint_metadata(model_store.local_path(version.checkpoint_path))["training_run"] == version.training_run_id
    stored = dict(ResponseScore.objects.filter(model_version=version).values_list("response__text", "score"))
    conversation = [{"role": "user", "content": "question 0 please help"}]
    texts = sorted(text for text in stored if text.endswith(" 0"))
    expected = score_responses(trainer_model, trainer_tokenizer, [(conversation, text) for text in texts], max_length=64)
    assert [stored[text] for text in texts] == pytest.approx(expected, abs=1e-5)
