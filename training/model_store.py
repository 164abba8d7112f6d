"""Where checkpoints live. One interface so callers never build paths themselves.

Checkpoints are stored under ``MODEL_STORE_DIR/project-<id>/v<version>``; a
version records the path relative to the store, so the store can move (or be a
shared mount on GPU workers) without rewriting rows.
"""
from pathlib import Path

from django.conf import settings


def root() -> Path:
    return Path(settings.MODEL_STORE_DIR)


def relative_name(*, project_id: int, version: int) -> str:
    return f"project-{project_id}/v{version}"


def local_path(name: str) -> str:
    return str(root() / name)


def save(model, tokenizer, *, project_id: int, version: int, metadata: dict) -> str:
    """Write a checkpoint atomically and return its store-relative name."""
    from training.ml.checkpoint import save_checkpoint

    name = relative_name(project_id=project_id, version=version)
    target = root() / name
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, tokenizer, target, metadata)
    return name
