from training.snapshots import snapshot_read, snapshot_write

# Two records as training.pairs writes them: unsorted keys, non-ASCII text, quotes, None.
RECORDS = [
    {"prompt_id": "7", "context": [{"role": "user", "content": "Grüße, 世界 — \"quoted\"\n"}], "chosen": "é",
     "rejected": "b", "margin": 0.25, "strength": 2, "tie": False, "confidence": 0.875, "label_id": 12},
    {"label_id": 13, "tie": True, "strength": None, "rejected": "x", "prompt_id": "8", "margin": 0.0, "context": [],
     "confidence": 1.0, "chosen": "y"},
]
# What snapshot_write wrote for RECORDS before it shared training.ml.data.write_jsonl: the
# snapshots already on disk carry this format, and their recorded hashes must still verify.
OLD_SHA256 = "1a41cefca6163a13cf4e47dd4a4f52b1ee44ec51e4f99189de727200d7cfb3a2"
OLD_BYTES = (
    b'{"chosen": "\xc3\xa9", "confidence": 0.875, "context": [{"content": "Gr\xc3\xbc\xc3\x9fe, '
    b'\xe4\xb8\x96\xe7\x95\x8c \xe2\x80\x94 \\"quoted\\"\\n", "role": "user"}], "label_id": 12, "margin": 0.25, '
    b'"prompt_id": "7", "rejected": "b", "strength": 2, "tie": false}\n'
    b'{"chosen": "y", "confidence": 1.0, "context": [], "label_id": 13, "margin": 0.0, "prompt_id": "8", '
    b'"rejected": "x", "strength": null, "tie": true}\n'
)


def test_a_snapshot_keeps_the_bytes_and_hash_of_older_snapshots(settings, tmp_path):
    settings.MODEL_STORE_DIR = tmp_path / "models"
    snapshot = snapshot_write(RECORDS)
    assert snapshot.sha256 == OLD_SHA256 and snapshot.pairs == 2
    assert snapshot.path.name == f"{OLD_SHA256}.jsonl"
    assert snapshot.path.read_bytes() == OLD_BYTES


def test_a_snapshot_written_by_the_old_code_still_verifies(tmp_path):
    old = tmp_path / f"{OLD_SHA256}.jsonl"
    old.write_bytes(OLD_BYTES)
    assert snapshot_read(old, OLD_SHA256) == RECORDS


def test_writing_the_same_records_again_leaves_the_file_alone(settings, tmp_path):
    settings.MODEL_STORE_DIR = tmp_path / "models"
    first = snapshot_write(RECORDS)
    modified_at = first.path.stat().st_mtime_ns
    assert snapshot_write([dict(record) for record in RECORDS]) == first
    assert first.path.stat().st_mtime_ns == modified_at
    assert sorted(path.name for path in first.path.parent.iterdir()) == [first.path.name]  # no temporary left
