"""Fixtures for the reward-model tests: a tiny random BERT and a separable toy set."""

from __future__ import annotations

import os
import random

import pytest

# Everything these tests load is local; never reach for the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from training.ml.config import TrainConfig  # noqa: E402
from training.ml.data import PreferencePair  # noqa: E402
from training.ml.model import build_tiny_model, load_reward_model  # noqa: E402

TOPICS = ["story", "poem", "code", "list", "idea", "question"]
GOOD = ["good", "helpful", "kind", "polite", "clear", "useful"]
BAD = ["bad", "rude", "terrible", "useless", "wrong", "mean"]
FILLER = ["here", "is", "the", "a", "my", "answer", "about", "this", "that", "it", "very", "really"]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> str:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def tiny_model(tiny_model_path):
    """(model, tokenizer), freshly loaded so a test may change either."""
    return load_reward_model(tiny_model_path, "cpu")


@pytest.fixture
def tiny_config(tiny_model_path) -> TrainConfig:
    """Settings under which the tiny model learns the toy set in a few seconds."""
    return TrainConfig(
        backbone_path=tiny_model_path,
        max_length=32,
        batch_size=8,
        learning_rate=3e-3,
        num_epochs=8,
        warmup_ratio=0.1,
        seed=0,
        device="cpu",
        # The whole model trains, so the trainer's mechanics (embedding rows, packing, DDP)
        # are tested on every part; test_freezing covers the product's frozen bottom.
        frozen_layers=0,
    )


def make_toy_pairs(num_prompts: int = 32, pairs_per_prompt: int = 2, seed: int = 0) -> list[PreferencePair]:
    """Pairs whose chosen response says "good"-like words and whose rejected
    one says "bad"-like words; everything else is shared noise."""
    rng = random.Random(seed)
    pairs = []
    for prompt in range(num_prompts):
        topic = rng.choice(TOPICS)
        context = ({"role": "user", "content": f"please tell me a {topic} {prompt}"},)
        for _ in range(pairs_per_prompt):
            words = rng.sample(FILLER, 4)
            chosen = " ".join(words[:2] + [rng.choice(GOOD)] + words[2:] + [topic])
            rejected = " ".join(rng.sample(FILLER, 2) + [rng.choice(BAD)] + rng.sample(FILLER, 2) + [topic])
            pairs.append(
                PreferencePair(
                    prompt_id=f"p{prompt}",
                    context=context,
                    chosen=chosen,
                    rejected=rejected,
                    margin=rng.choice([0.0, 0.5, 1.0]),
                    strength=rng.choice([1, 2, 3]),
                )
            )
    return pairs


@pytest.fixture
def toy_pairs() -> list[PreferencePair]:
    return make_toy_pairs()


@pytest.fixture
def toy_ties(toy_pairs) -> list[PreferencePair]:
    """One tie per prompt of ``toy_pairs``: its first chosen ("good") response
    and a plain one made of filler words only, judged equally good.

    Preferences alone never place plain responses, so their reward lands
    anywhere; the ties are what pulls it up to the good ones.
    """
    rng = random.Random(1)
    first_of_prompt = {}
    for pair in toy_pairs:
        first_of_prompt.setdefault(pair.prompt_id, pair)
    return [
        PreferencePair(
            prompt_id=pair.prompt_id,
            context=pair.context,
            chosen=pair.chosen,
            rejected=" ".join(rng.sample(FILLER, 5) + [pair.chosen.split()[-1]]),
            tie=True,
        )
        for pair in first_of_prompt.values()
    ]
