"""Padding-free training forward for BERT reward models (MiniLM and friends) on CPU.

On CPU a training step costs what its tokens cost, and most of those are in
the linear layers (Q, K, V, the attention output, the feed-forward), which
treat every token alike. So the real tokens of every text in a batch are
packed into one (N, hidden) matrix and those layers run once over exactly N
tokens, as large matrix products; only attention, which needs each text's own
tokens, goes through per-pass padded blocks (``batching.plan_passes``), and
is a small part of the work. And when the reward reads only each text's
first ([CLS]) token at the top (pooling cls_pooler or first_token), the last
layer computes keys and values for every token but its query, attention
output and feed-forward for the first tokens alone: the other tokens'
outputs there would reach no reward, and their gradients would be zeros.
That is about a seventh of MiniLM-L6's linear-layer work, forward and
backward. Mean pooling reads every token, so its top layer runs whole and
the mean is taken per text over the packed tokens. The result is the reward
``BertForSequenceClassification`` (or ``pooling.PooledRewardModel`` over a
``BertModel``) gives for each text, up to float rounding,
with the same parameters, gradients and dropout (the model's own dropout
modules, and the attention dropout its attention forward applies): the steps
mirror ``transformers.models.bert.modeling_bert``, and ``tests/training/ml``
compares the two on a tiny BERT and on the real MiniLM-L6 weights.

Only what the mirror covers is packed (``supports_packing``): encoder-only
BERT with absolute positions, one output, right padding, pooling cls_pooler,
first_token or mean. Anything else (another architecture, a decoder
backbone, last_token) is scored by whole forward passes.

The mirror reads ``modeling_bert``'s internals (submodule and attribute
names), which transformers is free to rename between releases, and
requirements.txt allows both 4.x and 5.x. So ``supports_packing`` checks,
on the model instance itself, every part ``packed_rewards`` reads, and a
model that lacks one is scored by whole passes rather than crashing
mid-training; where the two majors differ but agree on the value (the
attention scale, the attention dropout) it is derived so that both pack.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


# What packed_rewards reads, as attribute paths from the BERT model (``bert``
# of a BertForSequenceClassification, ``backbone`` of a PooledRewardModel) and
# from each encoder layer. All are modules it calls, except the attention's
# dropout, whose probability it reads, and the query, key and value
# projections, whose weights it multiplies by in one product.
_BERT_PARTS = (
    "embeddings.word_embeddings",
    "embeddings.token_type_embeddings",
    "embeddings.position_embeddings",
    "embeddings.LayerNorm",
    "embeddings.dropout",
)
# What each pooling reads beyond the encoder, as paths from the reward model.
_HEAD_PARTS = {
    # a BertModel built without its pooler has none: this reward reads it
    "cls_pooler": ("bert.pooler.dense", "bert.pooler.activation", "dropout", "classifier"),
    "first_token": ("dropout", "score"),
    "mean": ("dropout", "score"),
}
_LAYER_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.self.dropout",
    "attention.output.dense",
    "attention.output.dropout",
    "attention.output.LayerNorm",
    "intermediate",
    "output.dense",
    "output.dropout",
    "output.LayerNorm",
)


def _packed_pooling(model: torch.nn.Module) -> str | None:
    """Which of the mirrored reward shapes ``model`` is, if any, by its classes' names."""
    if type(model).__name__ == "BertForSequenceClassification":
        return "cls_pooler" if getattr(getattr(model, "config", None), "num_labels", None) == 1 else None
    pooling = getattr(model, "pooling", None)
    if (
        type(model).__name__ == "PooledRewardModel"
        and type(getattr(model, "backbone", None)).__name__ == "BertModel"
        and pooling in _HEAD_PARTS
    ):
        return pooling
    return None


def _bert(model: torch.nn.Module) -> torch.nn.Module:
    return model.bert if _packed_pooling(model) == "cls_pooler" else model.backbone


def supports_packing(model: torch.nn.Module, *, padding_side: str) -> bool:
    """Whether ``packed_rewards`` gives ``model``'s rewards: False means score by whole passes.

    Covers BertForSequenceClassification with one label (cls_pooler) and a
    PooledRewardModel over a BertModel with first_token or mean pooling.
    Checks the configuration the mirror covers and, on the instance, every
    submodule and attribute ``packed_rewards`` reads, so that a transformers
    release which renames or restructures any of them turns packing off
    instead of failing every training step with an AttributeError.
    """
    config = getattr(model, "config", None)
    pooling = _packed_pooling(model)
    if not (
        pooling is not None
        and config is not None
        and padding_side == "right"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "chunk_size_feed_forward", 0)
    ):
        return False
    bert = _part(model, "bert" if pooling == "cls_pooler" else "backbone")
    if not all(isinstance(_part(bert, path), torch.nn.Module) for path in _BERT_PARTS):
        return False
    if not all(isinstance(_part(model, path), torch.nn.Module) for path in _HEAD_PARTS[pooling]):
        return False
    layers = _part(bert, "encoder.layer")
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        return False
    return all(_layer_supported(layer) for layer in layers)


def _layer_supported(layer: torch.nn.Module) -> bool:
    if not all(isinstance(_part(layer, path), torch.nn.Module) for path in _LAYER_PARTS):
        return False
    if getattr(layer, "crossattention", None) is not None:
        return False
    self_attention = layer.attention.self
    heads = getattr(self_attention, "num_attention_heads", None)
    head_size = getattr(self_attention, "attention_head_size", None)
    if not (isinstance(heads, int) and isinstance(head_size, int) and heads > 0 and head_size > 0):
        return False
    # _heads splits Q, K and V rows into (heads, head_size); pruned or
    # resized heads must still tile them exactly.
    for projection in (self_attention.query, self_attention.key, self_attention.value):
        if getattr(projection, "out_features", None) != heads * head_size:
            return False
        # Q, K and V are computed from their weights in one product, not by
        # calling the modules: a subclass or a hook (an adapter, say) would be skipped.
        if type(projection) is not torch.nn.Linear or projection._forward_hooks or projection._forward_pre_hooks:
            return False
    # transformers 4 can give one layer relative positions (per-module
    # position_embedding_type), which the mirror does not compute.
    if getattr(self_attention, "position_embedding_type", "absolute") != "absolute":
        return False
    try:
        _attention_scale(self_attention)
        _attention_dropout(self_attention)
    except (AttributeError, TypeError):
        return False
    return True


def _part(root: object, path: str) -> object | None:
    for name in path.split("."):
        root = getattr(root, name, None)
        if root is None:
            return None
    return root


def _attention_scale(self_attention: torch.nn.Module) -> float:
    """The factor on query . key before the softmax.

    transformers 5 keeps it as ``scaling``; 4.x has no such attribute and
    computes the same 1/sqrt(attention_head_size) inline (eager divides by
    the square root, SDPA applies its default, 1/sqrt of the head size), so
    that value is the fallback, not a reason to stop packing.
    """
    scale = getattr(self_attention, "scaling", None)
    if scale is None:
        return self_attention.attention_head_size**-0.5
    if not isinstance(scale, (int, float)):
        raise TypeError(f"unexpected attention scaling {scale!r}")
    return float(scale)


def _attention_dropout(self_attention: torch.nn.Module) -> float:
    """The attention-probability dropout the module's own forward applies in training.

    transformers 5 and 4.x's eager attention read their ``dropout`` module's
    ``p``; 4.x's default ``BertSdpaSelfAttention`` reads a float
    ``dropout_prob`` copied from the config when it was built, which setting
    the module's ``p`` (``TrainConfig.disable_dropout``) does not change.
    The mirror applies whichever the model would, so it stays the model's
    forward, dropout included.
    """
    probability = getattr(self_attention, "dropout_prob", None)
    if probability is None:
        probability = self_attention.dropout.p
    if not isinstance(probability, (int, float)):
        raise TypeError(f"unexpected attention dropout {probability!r}")
    return float(probability)


class PackedLayout:
    """Where each real token of a right-padded (R, T) batch goes when packed.

    ``token_index`` (N,) picks the real tokens of the flattened batch, row by
    row; ``positions`` (N,) is each one's position in its text and
    ``row_of`` (N,) its row; ``first`` (R,) is each row's first token in the
    packed order, ``lengths`` (R,) each row's token count. For every pass
    (rows, width) of ``passes``, ``pass_slots`` holds a (rows, width) index
    into the packed tokens (padding slots point at token 0, masked out) and
    ``pass_keys`` the (rows, 1, 1, width) mask of real key slots; ``unpass``
    puts the passes' real slots, concatenated, back into packed order.

    Attention reads all passes through one gather and writes back through
    one (``gather_index``, ``scatter_index``): the slots of every pass,
    flattened and concatenated, (S,) packed tokens; and for each packed token
    its place among those S slots, (N,). A gather per pass and per
    projection instead cost, in backward, a zero-filled (N, H) gradient and a
    scatter for each one, about 6 % of a MiniLM step on 2 CPU cores.
    """

    def __init__(self, attention_mask: torch.Tensor, passes: list[tuple[list[int], int]]):
        device = attention_mask.device
        lengths = attention_mask.sum(dim=1)  # (R,)
        real = attention_mask.bool()  # (R, T); right padding: each row's tokens come first
        width = attention_mask.shape[1]
        self.token_index = real.flatten().nonzero().squeeze(1)  # (N,)
        self.positions = torch.arange(width, device=device).expand_as(real)[real]  # (N,)
        self.first = torch.cumsum(lengths, 0) - lengths  # (R,)
        self.lengths = lengths  # (R,)
        self.row_of = torch.arange(len(lengths), device=device).repeat_interleave(lengths)  # (N,)
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
        self.gather_index = torch.cat([slots.flatten() for slots in self.pass_slots])  # (S,)
        self.pass_sizes = [slots.numel() for slots in self.pass_slots]
        self.pass_shapes = [tuple(slots.shape) for slots in self.pass_slots]  # (rows, width) each
        real_slots = torch.cat([keys.flatten() for keys in self.pass_keys]).nonzero().squeeze(1)
        self.scatter_index = real_slots[self.unpass]  # (N,): packed token -> its slot among the S


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
    """(R, T) right-padded ids and mask -> (R,) rewards, as ``model(...).logits.squeeze(-1)``
    ((R, 1 + K) with K per-criterion heads)."""
    pooling = _packed_pooling(model)
    layout = PackedLayout(attention_mask, passes)
    bert = _bert(model)
    embeddings = bert.embeddings
    ids = input_ids.flatten()[layout.token_index]  # (N,)
    hidden = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(torch.zeros_like(ids))
    hidden = hidden + embeddings.position_embeddings(layout.positions)
    hidden = embeddings.dropout(embeddings.LayerNorm(hidden))  # (N, H)
    *lower, top = bert.encoder.layer
    for layer in lower:
        context = _packed_attention(layer.attention.self, hidden, layout)  # (N, H)
        hidden = _after_attention(layer, context, hidden)  # (N, H)
    if pooling == "mean":
        # Every token's top-layer output reaches the mean: the whole layer runs.
        context = _packed_attention(top.attention.self, hidden, layout)  # (N, H)
        hidden = _after_attention(top, context, hidden)  # (N, H)
        sums = hidden.new_zeros(len(layout.lengths), hidden.shape[1]).index_add(0, layout.row_of, hidden)
        pooled = sums / layout.lengths.unsqueeze(1).to(hidden.dtype)  # (R, H)
        return model.rewards_of(pooled).squeeze(-1)  # (R,) or (R, 1 + K)
    context = _first_token_attention(top.attention.self, hidden, layout)  # (R, H)
    first_hidden = _after_attention(top, context, hidden[layout.first])  # (R, H)
    if pooling == "first_token":
        return model.rewards_of(first_hidden).squeeze(-1)  # (R,) or (R, 1 + K)
    pooled = bert.pooler.activation(bert.pooler.dense(first_hidden))  # (R, H)
    return model.classifier(model.dropout(pooled)).squeeze(-1)  # (R,)


def _after_attention(layer: torch.nn.Module, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """BertSelfOutput then BertIntermediate + BertOutput, token by token: (n, H) -> (n, H)."""
    output = layer.attention.output
    hidden = output.LayerNorm(output.dropout(output.dense(context)) + residual)
    feed_forward = layer.output
    return feed_forward.LayerNorm(feed_forward.dropout(feed_forward.dense(layer.intermediate(hidden))) + hidden)


def _packed_attention(self_attention: torch.nn.Module, hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """Multi-head self-attention of each text over its own tokens: (N, H) -> (N, H).

    Q, K and V come from one matrix product (their weights side by side) and
    one gather into the passes' slots; each pass then reads its block as views.
    """
    slots = _projected(hidden, self_attention.query, self_attention.key, self_attention.value)
    slots = slots.index_select(0, layout.gather_index)  # (S, 3H)
    outputs = []
    for block, (rows, width), keys in zip(slots.split(layout.pass_sizes), layout.pass_shapes, layout.pass_keys):
        query, key, value = _heads(self_attention, block, rows, width, 3)
        attended = _attend(self_attention, query, key, value, keys)  # (rows, width, H)
        outputs.append(attended.flatten(0, 1))  # (rows * width, H)
    return torch.cat(outputs).index_select(0, layout.scatter_index)  # (N, H)


def _first_token_attention(self_attention: torch.nn.Module, hidden: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """Self-attention output at each text's first token only: (N, H) -> (R, H)."""
    query = self_attention.query(hidden[layout.first])  # (R, H)
    slots = _projected(hidden, self_attention.key, self_attention.value).index_select(0, layout.gather_index)  # (S, 2H)
    outputs = []
    for block, rows, (count, width), keys in zip(
        slots.split(layout.pass_sizes), layout.pass_rows, layout.pass_shapes, layout.pass_keys
    ):
        key, value = _heads(self_attention, block, count, width, 2)
        (first_query,) = _heads(self_attention, query[rows], count, 1, 1)
        outputs.append(_attend(self_attention, first_query, key, value, keys)[:, 0])  # (rows, H)
    return torch.cat(outputs)[layout.unpass_rows]


def _projected(hidden: torch.Tensor, *projections: torch.nn.Linear) -> torch.Tensor:
    """The projections of ``hidden`` side by side, as one matrix product: (n, H) -> (n, sum of outputs)."""
    weight = torch.cat([projection.weight for projection in projections])
    bias = torch.cat([_bias(projection) for projection in projections])
    return F.linear(hidden, weight, bias)


def _bias(projection: torch.nn.Linear) -> torch.Tensor:
    if projection.bias is not None:
        return projection.bias
    return projection.weight.new_zeros(projection.out_features)


def _heads(
    self_attention: torch.nn.Module, block: torch.Tensor, rows: int, width: int, parts: int
) -> tuple[torch.Tensor, ...]:
    """A pass's (rows * width, parts * H) slots as ``parts`` views of (rows, heads, width, d)."""
    heads, head_size = self_attention.num_attention_heads, self_attention.attention_head_size
    # unbind, not slicing: its backward stacks the parts' gradients in one
    # tensor, where each slice's would zero-fill a whole block of its own.
    return block.view(rows, width, parts, heads, head_size).permute(2, 0, 3, 1, 4).unbind(0)


def _attend(
    self_attention: torch.nn.Module,
    query_heads: torch.Tensor,
    key_heads: torch.Tensor,
    value_heads: torch.Tensor,
    keys: torch.Tensor,
) -> torch.Tensor:
    """SDPA of (rows, heads, q, d) queries over the pass's real key slots -> (rows, q, H)."""
    attended = F.scaled_dot_product_attention(
        query_heads,
        key_heads,
        value_heads,
        attn_mask=keys,
        dropout_p=_attention_dropout(self_attention) if self_attention.training else 0.0,
        scale=_attention_scale(self_attention),
    )  # (rows, heads, q, d)
    rows, _, queries, _ = attended.shape
    return attended.transpose(1, 2).reshape(rows, queries, -1)
