"""Atomic reward-model checkpoints: a folder appears complete or not at all."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

METADATA_FILE = "reward_metadata.json"


def save_checkpoint(model: Any, tokenizer: Any, directory: str | os.PathLike, metadata: dict) -> Path:
    """Write model (safetensors), tokenizer and ``reward_metadata.json`` to ``directory``.

    Everything is written into a sibling ``.tmp-<name>-<random>`` folder,
    fsynced, then renamed onto ``directory``, so a reader (or a crash) never
    sees a half-written checkpoint. An existing ``directory`` is never
    replaced: FileExistsError, and the old one is left as it was. ``metadata``
    (config, data hash, seed, code version...) must be JSON-serialisable;
    it is checked before any weights are written. The folder can be loaded
    back with ``model.load_reward_model``.
    """
    directory = Path(directory)
    if directory.exists():
        raise FileExistsError(f"checkpoint folder already exists: {directory}")
    metadata_text = json.dumps(metadata, indent=2, sort_keys=True)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=directory.parent))
    try:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        (temporary / METADATA_FILE).write_text(metadata_text + "\n", encoding="utf-8")
        for path in temporary.rglob("*"):
            if path.is_file():
                _fsync(path)
        _fsync(temporary)
        # mkdtemp makes the folder private (0700); other users (the web
        # process) read checkpoints too.
        temporary.chmod(0o755)
        # rename(2) replaces an existing *empty* folder without complaint,
        # so look again just before it.
        if directory.exists():
            raise FileExistsError(f"checkpoint folder already exists: {directory}")
        os.rename(temporary, directory)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync(directory.parent)
    return directory


def load_checkpoint_metadata(directory: str | os.PathLike) -> dict:
    """The metadata dict given to ``save_checkpoint``."""
    with open(Path(directory) / METADATA_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
