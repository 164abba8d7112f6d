"""benchmarks/active_learning.py: the verdict's reading of the curves, and the replay's wiring
through the real claim, label, training and priority code (a tiny model, a toy pool)."""
import json

import pytest

from benchmarks.active_learning import (
    label_some, labelled_pairs, labels_to_reach, main, mean_curve, priorities_refresh, replay_create,
    seed_random_draws, verdict,
)
from training.ml.config import TrainConfig
from training.ml.data import PreferencePair
from training.ml.model import build_tiny_model
from training.ml.trainer import train_reward_model


def test_reaching_a_level_is_interpolated_between_rounds():
    curve = [(100, 0.50), (200, 0.54), (300, 0.58)]
    assert labels_to_reach(curve, 0.56) == pytest.approx(250)
    assert labels_to_reach(curve, 0.50) == 100  # already there at the first point
    assert labels_to_reach(curve, 0.60) is None
    # The first crossing counts, not a later one after a dip.
    assert labels_to_reach([(100, 0.5), (200, 0.6), (300, 0.55), (400, 0.6)], 0.58) == pytest.approx(180)


def test_the_verdict_compares_with_the_random_curves_final_accuracy():
    random_curve = [(100, 0.50), (500, 0.55), (1000, 0.60)]
    assert verdict(random_curve, [(100, 0.50), (500, 0.60), (1000, 0.62)]) == {
        "random_final_labels": 1000, "random_final_accuracy": 0.60, "random_first_reaches_at": 1000.0,
        "uncertainty_reaches_at": 500.0, "share": 0.5, "target_share": 0.6, "passed": True,
    }
    late = verdict(random_curve, [(100, 0.50), (500, 0.55), (1000, 0.61)])
    assert late["uncertainty_reaches_at"] == pytest.approx(500 + 500 * 5 / 6) and not late["passed"]
    assert not verdict(random_curve, [(100, 0.50), (1000, 0.59)])["passed"]


def test_mean_curve_over_seeds():
    rows = mean_curve([[(100, 0.5), (200, 0.6)], [(100, 0.7), (200, 0.6)]])
    assert [(labels, round(mean, 6), round(sd, 6)) for labels, mean, sd in rows] == [
        (100, 0.6, round(0.02**0.5, 6)), (200, 0.6, 0.0),
    ]


def _run_file(path, seed, random_curve, uncertainty_curve, budget=300):
    path.write_text(json.dumps({
        "args": {"budget": str(budget), "max_length": "256", "device": "cuda"}, "pool": 1500, "dev": 245,
        "curves": {"uncertainty": {str(seed): uncertainty_curve}, "random": {str(seed): random_curve}},
    }))
    return str(path)


def test_replot_merges_the_runs_of_one_seed_each_and_skips_unfinished_ones(tmp_path, capsys):
    """A GPU machine runs the seeds side by side, one process and JSON file each."""
    files = [
        _run_file(tmp_path / "seed0.json", 0, [[100, 0.5], [200, 0.55], [300, 0.6]], [[100, 0.5], [200, 0.6], [300, 0.62]]),
        _run_file(tmp_path / "seed1.json", 1, [[100, 0.5], [200, 0.57], [300, 0.6]], [[100, 0.5], [200, 0.6], [300, 0.6]]),
        # Stopped at its time limit: its curves end before the budget and are left out.
        _run_file(tmp_path / "seed2.json", 2, [[100, 0.5], [200, 0.9]], [[100, 0.5], [200, 0.9]]),
    ]
    svg = tmp_path / "plot.svg"
    assert main(["--replot", *files, "--svg", str(svg)]) == 0
    out = capsys.readouterr().out
    assert "3 file(s)" in out and "2 seeds" in out and "seed 2" not in out
    assert "random reaches 0.6000 at 300 labels; uncertainty reaches 0.6000 at 200 labels" in out
    assert svg.read_text().startswith("<svg")
    with pytest.raises(SystemExit, match="seed 0"):
        main(["--replot", files[0], files[0]])


TOY_POOL = [
    PreferencePair(f"p{index}", ({"role": "user", "content": f"question {index}"},),
                   f"a helpful answer {index}", f"no {index}")
    for index in range(6)
]


@pytest.mark.django_db
def test_a_round_labels_with_the_datasets_answer_and_the_next_claim_follows_the_priorities(tmp_path, sent_tasks):
    from annotation.models import ComparisonItem

    replay = replay_create(strategy="uncertainty", seed=0, pool=TOY_POOL, random_share=0.0)
    assert label_some(replay, 2, ordering="random") == 2
    indices, pairs = labelled_pairs(replay, TOY_POOL)
    # Whichever side each lease showed the chosen response on, the stored label prefers it.
    assert len(indices) == 2 and pairs == [
        PreferencePair(TOY_POOL[i].prompt_id, TOY_POOL[i].context, TOY_POOL[i].chosen, TOY_POOL[i].rejected)
        for i in indices
    ]

    config = TrainConfig(backbone_path=build_tiny_model(tmp_path / "tiny"), max_length=32, device="cpu")
    result = train_reward_model(pairs, config)
    refresh = priorities_refresh(replay, result.model, result.tokenizer, config, TOY_POOL, set(indices), {})
    assert refresh["scored"] == 2 * (len(TOY_POOL) - 2)  # the unlabelled items' responses only
    open_items = ComparisonItem.objects.filter(project=replay.project, label_count=0)
    priorities = dict(open_items.values_list("id", "model_priority"))
    assert len(priorities) == 4 and all(priority > 0 for priority in priorities.values())

    assert label_some(replay, 1, ordering="uncertainty") == 1
    newly = set(labelled_pairs(replay, TOY_POOL)[0]) - set(indices)
    top = max(priorities, key=lambda item_id: (priorities[item_id], -item_id))
    assert newly == {replay.item_index[top]}


@pytest.mark.django_db
def test_a_seed_repeats_the_random_order(sent_tasks):
    """The strategies of a seed start from one random batch (SQLite's order is Python's draws,
    PostgreSQL's is seeded with setseed)."""
    def items_in_order(seed: int, strategy: str) -> list[int]:
        replay = replay_create(strategy=strategy, seed=seed, pool=TOY_POOL, random_share=0.0)
        seed_random_draws(seed)
        taken = []
        for _ in range(len(TOY_POOL) - 1):
            label_some(replay, 1, ordering="random")
            taken.extend(set(labelled_pairs(replay, TOY_POOL)[0]) - set(taken))
        return taken

    assert items_in_order(7, "uncertainty") == items_in_order(7, "random")
    assert len({tuple(items_in_order(seed, "random")) for seed in (1, 2, 3)}) > 1  # and the seed matters
