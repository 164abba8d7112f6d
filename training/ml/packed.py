"""Padding-free training forward for BERT reward models (MiniLM and friends) on CPU.

On CPU a training step costs what its tokens cost, and most of those are in
the linear layers (Q, K, V, the attention output, the feed-forward), which
treat every token alike. So the real tokens of every text in a batch are
packed into one (N, hidden) matrix and those layers run once over exactly N
tokens, as large matrix products; only attention, which needs each text's own
tokens, goes through per-pass padded blocks (``batching.plan_passes``), and
is a small part of the work. And since the reward reads only each text's
first ([CLS]) token at the top, the last layer computes keys and values for
every token but its query, attention output and feed-forward for the first
tokens alone: the other tokens' outputs there would reach no reward, and
their gradients would be zeros. That is about a seventh of MiniLM-L6's
linear-layer work, forward and backward. The result is the reward
``BertForSequenceClassification`` gives for each text, up to float rounding,
with the same parameters, gradients and dropout modules (so
``disable_dropout`` applies as usual): the steps mirror
``transformers.models.bert.modeling_bert``, and ``tests/training/ml`` compares
the two on a tiny BERT.

Only what the mirror covers is packed (``supports_packing``): encoder-only
BERT with absolute positions, one output, right padding. Anything else
(another architecture, a decoder backbone) is scored by whole forward passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supports_packing(model: torch.nn.Module, *, padding_side: str) -> bool:
    config = getattr(model, "config", None)
    return (
        type(model).__name__ == "BertForSequenceClassification"
        and padding_side == "right"
        and config.num_labels == 1
        and not config.is_decoder
        and not config.add_cross_attention
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not config.chunk_size_feed_forward
        and model.bert.pooler is not None
    )


class PackedLayout:
    """Where each real token of a right-padded (R, T) batch goes when packed.

    ``token_index`` (N,) picks the real tokens of the flattened batch, row by
    row; ``positions`` (N,) is each one's position in its text; ``first``
    (R,) is each row's first token in the packed order. For every pass
    (rows, width) of ``passes``, ``pass_slots`` holds a (rows, width) index
    into the packed tokens (padding slots point at token 0, masked out) and
    ``pass_keys`` the (rows, 1, 1, width) mask of real key slots; ``unpass``
    puts the passes' real slots, concatenated, back into packed order.
    """

    def __init__(self, attention_mask: torch.Tensor, passes: list[tuple[list[int], int]]):
        device = attention_mask.device
        lengths = attention_mask.sum(dim=1)  # (R,)
        real = attention_mask.bool()  # (R, T); right padding: each row's tokens come first
        width = attention_mask.shape[1]
        self.token_index = real.flatten().nonzero().squeeze(1)  # (N,)
        self.positions = torch.arange(width, device=device).expand_as(real)[real]  # (N,)
        self.first = torch.cumsum(lengths, 0) - lengths  # (R,)
        self.pass_slots, self.pass_keys, self.pass_rows, pass_order = [], [], [], []
        for rows, pass_width in passes:
            rows_tensor = torch.tensor(rows, device=device)
            self.pass_rows.append(rows_tensor)
            columns = torch.arange(pass_width, device=device)
            keys = columns < lengths[rows_tensor].unsqueeze(1)  # (rows, width)
            slots = torch.where(keys, self.first[rows_tensor].unsqueeze(1) + columns, 0)
            self.pass_slots.append(slots)
            self.pass_keys.append(keys[:, None, None, :])
            pass_order.append(slots[keys])
        self.unpass = _inverse(torch.cat(pass_order))  # concatenated real slots -> packed order
        self.unpass_rows = _inverse(torch.cat(self.pass_rows))  # concatenated pass rows -> row order


def _inverse(permutation: torch.Tensor) -> torch.Tensor:
    inverse = torch.empty_like(permutation)
    inverse[permutation] = torch.arange(len(permutation), device=permutation.device)
    return inverse


def packed_rewards(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    passes: list[tuple[list[int], int]],
) -> torch.Tensor:
    """(R, T) right-padded ids and mask -> (R,) rewards, as ``model(...).logits.squeeze(-1)``."""
    layout = PackedLayout(attention_mask, passes)
    bert = model.bert
    embeddings = bert.embeddings
    ids = input_ids.flatten()[layout.token_index]  # (N,)
    hidden = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(torch.zeros_like(ids))
    hidden = hidden + embeddings.position_embeddings(layout.positions)
    hidden = embeddings.dropout(embeddings.LayerNorm(hidden))  # (N, H)
    *lower, top = bert.encoder.layer
    for layer in lower:
        context = _packed_attention(layer.attention.self, hidden, layout)  # (N, H)
        hidden = _after_attention(layer, context, hidden)  # (N, H)
    context = _first_token_attention(top.attention.self, hidden, layout)  # (R, H)
    first_hidden = _after_attention(top, context, hidden[layout.first])  # (R, H)
    pooled = bert.pooler.activation(bert.pooler.dense(first_hidden))  # (R, H)
    return model.classifier(model.dropout(pooled)).squeeze(-1)  # (R,)


def _after_attention(layer: torch.nn.Module, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """BertSelfOutput then BertIntermediate + BertOutput, token by token: (n, H) -> (n, H)."""
    output = layer.attention.output
    hidden = output.LayerNorm(output.dropout(output.dense(context)) + residual)
    feed_forward = layer.output
    return feed_forward.LayerNorm(feed_forward.dropout(feed_forward.dense(layer.intermediate(hidden))) + hidden)


def _packed_attention(self_attention: torch.nn.Module, hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """Multi-head self-attention of each text over its own tokens: (N, H) -> (N, H)."""
    query = self_attention.query(hidden)  # (N, H)
    key, value = self_attention.key(hidden), self_attention.value(hidden)
    outputs = []
    for slots, keys in zip(layout.pass_slots, layout.pass_keys):
        attended = _attend(self_attention, _heads(self_attention, query, slots), key, value, slots, keys)
        outputs.append(attended[keys[:, 0, 0, :]])  # real query slots only: (tokens of the pass, H)
    return torch.cat(outputs)[layout.unpass]


def _first_token_attention(self_attention: torch.nn.Module, hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """Self-attention output at each text's first token only: (N, H) -> (R, H)."""
    query = self_attention.query(hidden[layout.first])  # (R, H)
    key, value = self_attention.key(hidden), self_attention.value(hidden)  # (N, H) each
    outputs = []
    for rows, slots, keys in zip(layout.pass_rows, layout.pass_slots, layout.pass_keys):
        attended = _attend(self_attention, _heads(self_attention, query, rows[:, None]), key, value, slots, keys)
        outputs.append(attended[:, 0])  # (rows, H)
    return torch.cat(outputs)[layout.unpass_rows]


def _heads(self_attention: torch.nn.Module, states: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """``states[slots]`` split into heads: (n, H) and (rows, width) -> (rows, heads, width, d)."""
    rows, width = slots.shape
    heads, head_size = self_attention.num_attention_heads, self_attention.attention_head_size
    return states[slots].view(rows, width, heads, head_size).transpose(1, 2)


def _attend(
    self_attention: torch.nn.Module,
    query_heads: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    slots: torch.Tensor,
    keys: torch.Tensor,
) -> torch.Tensor:
    """SDPA of (rows, heads, q, d) queries over the pass's real key slots -> (rows, q, H)."""
    attended = F.scaled_dot_product_attention(
        query_heads,
        _heads(self_attention, key, slots),
        _heads(self_attention, value, slots),
        attn_mask=keys,
        dropout_p=self_attention.dropout.p if self_attention.training else 0.0,
        scale=self_attention.scaling,
    )  # (rows, heads, q, d)
    rows, _, queries, _ = attended.shape
    return attended.transpose(1, 2).reshape(rows, queries, -1)
