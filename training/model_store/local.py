"""The default model store: a folder, ``MODEL_STORE_DIR`` (local disk, or a mount shared by workers).

A checkpoint is the folder ``<root>/<name>``; ``save_checkpoint`` writes it into a
temporary sibling and renames it, so it appears complete or not at all, and an
existing one is never replaced (FileExistsError).
"""
from pathlib import Path


class LocalFolderStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def local_path(self, name: str) -> str:
        """The checkpoint's folder. Not checked: a missing one fails when it is loaded."""
        return str(self.root / name)

    def save(self, model, tokenizer, *, name: str, metadata: dict) -> None:
        from training.ml.checkpoint import save_checkpoint

        save_checkpoint(model, tokenizer, self.root / name, metadata)
