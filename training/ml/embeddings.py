"""Train only the rows of the word embedding that the training data uses.

A step's gradient for the word embedding (30,522 x 384 for MiniLM-L6, half
the model's parameters) is dense: torch zero-fills all of it and adds the
batch's rows, then clipping reads it and fused AdamW reads and writes every
row of the weight, the gradient and both moments. On 2 CPU cores that was
2-6 % of a MiniLM step (the more when the zero-filled memory was fresh),
though a run touches only the rows of the ids its pairs contain (about 4,000
for 256 HH-RLHF pairs, 10,000 for all 1,615).

A row whose gradient is zero at every step never moves under AdamW without
weight decay: its moments stay 0, so its update is exactly 0. So training a
(used rows x hidden) table in the embedding's place and writing its rows back
afterwards gives the model full training would, up to float rounding in the
gradient norm's sum. With weight decay the unused rows would shrink, so the
embedding is then trained whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F


class CompactEmbedding(torch.nn.Module):
    """An ``nn.Embedding`` that holds only the rows of ``used_ids``, looked up by the full ids.

    An id outside ``used_ids`` maps to row -1, which ``F.embedding`` refuses,
    so a lookup the plan did not foresee fails loudly instead of reading
    another token's row.
    """

    def __init__(self, full: torch.nn.Embedding, used_ids: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(full.weight.detach()[used_ids].clone())  # (U, H)
        row_of = torch.full((full.num_embeddings,), -1, dtype=torch.long, device=used_ids.device)
        row_of[used_ids] = torch.arange(len(used_ids), device=used_ids.device)
        self.register_buffer("row_of", row_of, persistent=False)  # (V,): full id -> compact row
        self.padding_idx = None
        if full.padding_idx is not None and row_of[full.padding_idx] >= 0:
            self.padding_idx = int(row_of[full.padding_idx])
        self.embedding_dim = full.embedding_dim

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(self.row_of[input_ids], self.weight, self.padding_idx)


@contextlib.contextmanager
def compact_input_embeddings(
    model: torch.nn.Module, token_ids: Iterable[int], *, weight_decay: float
) -> Iterator[bool]:
    """Within the block, ``model``'s word embedding trains only the rows of ``token_ids``.

    Yields whether it did: the embedding stays whole (and this is a no-op)
    with weight decay, when the embedding is frozen, shared (tied to an output
    layer), not a plain ``nn.Embedding``, or when every row is used. On leaving
    the block, however it is left, the trained rows are written back into the
    model's own embedding, which is put back in place, so what is saved or
    scored afterwards is the model as it was built. Build the optimizer inside
    the block: it must hold the compact table's parameter.
    """
    embedding = _input_embeddings(model)
    place = _only_place(model, embedding) if embedding is not None else None
    used = sorted(set(token_ids))
    whole = place is None or weight_decay != 0 or not _plain_trainable(model, embedding)
    if whole or len(used) >= embedding.num_embeddings:
        yield False
        return
    owner, name = place
    used_ids = torch.tensor(used, dtype=torch.long, device=embedding.weight.device)
    compact = CompactEmbedding(embedding, used_ids)
    setattr(owner, name, compact)
    try:
        yield True
    finally:
        with torch.no_grad():
            embedding.weight[used_ids] = compact.weight.to(embedding.weight.dtype)
        setattr(owner, name, embedding)


def _input_embeddings(model: torch.nn.Module) -> torch.nn.Module | None:
    """The word embedding: transformers' own accessor, on the model or its backbone."""
    for owner in (model, getattr(model, "backbone", None)):
        getter = getattr(owner, "get_input_embeddings", None)
        if not callable(getter):
            continue
        try:
            embedding = getter()
        except NotImplementedError:
            continue
        if embedding is not None:
            return embedding
    return None


def _only_place(model: torch.nn.Module, embedding: torch.nn.Module) -> tuple[torch.nn.Module, str] | None:
    """(owner module, attribute name) of the embedding, if the model holds it in exactly one place."""
    places = [
        (owner, name)
        for owner in model.modules()
        for name, child in owner.named_children()
        if child is embedding
    ]
    return places[0] if len(places) == 1 else None


def _plain_trainable(model: torch.nn.Module, embedding: torch.nn.Module) -> bool:
    """A trainable ``nn.Embedding`` looked up plainly, whose weight no other layer shares."""
    if type(embedding) is not torch.nn.Embedding or not embedding.weight.requires_grad:
        return False
    if embedding.sparse or embedding.max_norm is not None or embedding.scale_grad_by_freq:
        return False
    if embedding._forward_hooks or embedding._forward_pre_hooks:
        return False
    weight = embedding.weight
    shared = model.named_parameters(remove_duplicate=False)
    return sum(parameter is weight for _, parameter in shared) == 1
