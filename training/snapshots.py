"""Frozen training datasets: an immutable JSONL file named by its content hash."""
import hashlib
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from training.ml.data import write_jsonl


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sha256: str
    pairs: int


def snapshot_dir() -> Path:
    return Path(settings.MODEL_STORE_DIR).parent / "datasets"


def snapshot_write(records: list[dict]) -> Snapshot:
    """Write ``records`` once; the same records always give the same file and hash (``write_jsonl``)."""
    # Encoded in memory first: the hash names the file, and an existing snapshot is not written again.
    buffer = io.BytesIO()
    digest = write_jsonl(records, buffer)
    folder = snapshot_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.jsonl"
    if not path.exists():
        # Write beside the target and rename, so a reader never sees half a file.
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".jsonl")
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o444)
        os.replace(tmp_name, path)
    return Snapshot(path=path, sha256=digest, pairs=len(records))


def snapshot_read(path: str | Path, expected_sha256: str) -> list[dict]:
    payload = Path(path).read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != expected_sha256:
        raise ValueError(f"Snapshot {path} has hash {digest}, expected {expected_sha256}: it was modified.")
    return [json.loads(line) for line in payload.decode().splitlines() if line]
