"""benchmarks/recipe_sweep.py: the sweep's keys, its statistics and its table, from runs on disk."""
import json
import math

import pytest

from benchmarks.recipe_sweep import Setting, interval, load_runs, main, setting_from_key, summarise


def test_a_setting_key_reads_back_as_the_same_setting():
    setting = Setting(epochs=2, learning_rate=3e-5, batch_size=16, warmup_ratio=0.1, weight_decay=0.0,
                      pooling="cls_pooler")

    assert setting.key == "e2-lr3e-05-b16-w0.1-wd0-cls_pooler"
    assert setting_from_key(setting.key) == setting


def test_a_frozen_setting_says_so_in_its_key_and_earlier_keys_mean_nothing_frozen():
    frozen = Setting(1, 5e-5, 8, 0.1, 0.0, "auto", frozen_layers=2)

    assert frozen.key == "e1-lr5e-05-b8-w0.1-wd0-auto-f2"
    assert setting_from_key(frozen.key) == frozen
    assert frozen.arguments()[-2:] == ["--frozen-layers", "2"]
    assert setting_from_key("e1-lr5e-05-b8-w0.1-wd0-auto").frozen_layers == 0  # a key from before the option


def test_a_key_that_is_not_a_setting_stops_the_sweep_with_its_name():
    with pytest.raises(SystemExit, match="e2-lr"):
        setting_from_key("e2-lr")


def test_interval_is_the_mean_and_the_half_width_of_the_95_percent_t_interval():
    mean, half = interval([0.60, 0.62, 0.64])

    assert mean == pytest.approx(0.62)
    # stdev 0.02, t(2 df) = 4.303: 4.303 * 0.02 / sqrt(3)
    assert half == pytest.approx(4.303 * 0.02 / math.sqrt(3))
    assert interval([0.5]) == (0.5, 0.0)


def run(accuracy: float, loss: float = 0.66, ece: float = 0.03) -> dict:
    return {"dev": {"accuracy": accuracy, "loss": loss, "ece": ece}, "pairs_per_second": 100.0}


def test_the_difference_against_the_reference_is_paired_by_seed():
    runs = {
        "reference": {0: run(0.60), 1: run(0.70)},
        # Better than the reference by exactly 0.01 on each seed: a spread between seeds of 0.1
        # must not blur a difference that is the same on every seed.
        "better": {0: run(0.61), 1: run(0.71), 2: run(0.90)},
    }

    rows = summarise(runs, reference="reference")

    assert [row["setting"] for row in rows] == ["better", "reference"]
    better = rows[0]
    assert better["seeds"] == 3
    assert better["vs_reference"]["seeds"] == 2  # seed 2 has no reference run to pair with
    difference, half = better["vs_reference"]["difference"]
    assert difference == pytest.approx(0.01)
    assert half == pytest.approx(0.0, abs=1e-9)
    assert rows[1]["vs_reference"] is None


def test_summarise_only_reads_complete_runs_and_prints_the_table(tmp_path, capsys):
    for seed, (reference_accuracy, other_accuracy) in enumerate([(0.60, 0.62), (0.62, 0.63)]):
        (tmp_path / f"e1-lr5e-05-b8-w0.1-wd0-auto-s{seed}.json").write_text(json.dumps(run(reference_accuracy)))
        (tmp_path / f"e2-lr5e-05-b8-w0.1-wd0-auto-s{seed}.json").write_text(
            json.dumps(run(other_accuracy, loss=0.8, ece=0.2)))
    (tmp_path / "e3-lr5e-05-b8-w0.1-wd0-auto-s0.json.partial").write_text("{")  # a run cut short
    summary = tmp_path / "summary.json"

    assert set(load_runs(tmp_path)) == {"e1-lr5e-05-b8-w0.1-wd0-auto", "e2-lr5e-05-b8-w0.1-wd0-auto"}
    exit_code = main(["--out-dir", str(tmp_path), "--summarise-only", "--epochs", "1", "--learning-rates", "5e-5",
                      "--batch-sizes", "8", "--warmup-ratios", "0.1", "--weight-decays", "0", "--poolings", "auto",
                      "--frozen-layers", "0", "--json-out", str(summary)])

    assert exit_code == 0
    table = capsys.readouterr().out
    lines = [line for line in table.splitlines() if line.startswith("| e")]
    assert len(lines) == 2  # each setting once
    assert lines[0].startswith("| e2-lr5e-05-b8-w0.1-wd0-auto | 2 | 0.6250")
    assert "+0.0150" in lines[0] and "(> ln 2)" in lines[0]
    assert "reference" in lines[1]
    assert json.loads(summary.read_text())["reference"] == "e1-lr5e-05-b8-w0.1-wd0-auto"
