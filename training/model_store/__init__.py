"""Where checkpoints live. One interface so callers never build paths or keys themselves.

A version records its checkpoint's *name* (``project-<id>/v<version>``), relative to
the store, so the store can move without rewriting rows. Settings choose the backend:

* ``MODEL_STORE_URL`` unset: a folder, ``MODEL_STORE_DIR`` (``local.py``); share it
  between machines as a mount.
* ``MODEL_STORE_URL=s3://bucket/optional/prefix``: S3-compatible object storage
  (``s3.py``; ``MODEL_STORE_S3_ENDPOINT_URL`` for MinIO, R2, Ceph...), read through a
  download cache in ``MODEL_CACHE_DIR`` on each machine.

Either way a checkpoint is published whole or not at all, and a published one is
never replaced. boto3 is imported only when S3 is configured.
"""
from pathlib import Path
from typing import Protocol

from django.conf import settings

from config.env import s3_location


class CheckpointExists(FileExistsError):
    """The version is already published; checkpoints are immutable."""


class CheckpointNotFound(FileNotFoundError):
    """No published checkpoint has this name (never saved, or its upload did not finish)."""


class CheckpointCorrupt(ValueError):
    """A downloaded file does not match the size or sha256 its manifest records."""


class ModelStore(Protocol):
    def local_path(self, name: str) -> str:
        """A local folder holding the checkpoint, loadable with ``load_reward_model``."""

    def save(self, model, tokenizer, *, name: str, metadata: dict) -> None:
        """Publish a checkpoint atomically; CheckpointExists/FileExistsError if ``name`` is taken."""


def relative_name(*, project_id: int, version: int) -> str:
    return f"project-{project_id}/v{version}"


def backend() -> ModelStore:
    """The store the settings configure (read on every call, so tests can override them)."""
    if not settings.MODEL_STORE_URL:
        from training.model_store.local import LocalFolderStore

        return LocalFolderStore(Path(settings.MODEL_STORE_DIR))
    from training.model_store.s3 import s3_store

    bucket, prefix = s3_location("MODEL_STORE_URL", settings.MODEL_STORE_URL)
    return s3_store(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=settings.MODEL_STORE_S3_ENDPOINT_URL or None,
        region=settings.MODEL_STORE_S3_REGION or None,
        cache_dir=str(settings.MODEL_CACHE_DIR),
    )


def local_path(name: str) -> str:
    """A local folder with the checkpoint ``name`` (downloaded first from object storage)."""
    return backend().local_path(name)


def save(model, tokenizer, *, project_id: int, version: int, metadata: dict) -> str:
    """Write a checkpoint atomically and return its store-relative name."""
    name = relative_name(project_id=project_id, version=version)
    backend().save(model, tokenizer, name=name, metadata=metadata)
    return name
