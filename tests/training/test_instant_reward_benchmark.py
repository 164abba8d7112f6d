"""benchmarks/instant_reward.py: how a round's timestamps become its stage table and the verdict."""
import pytest

from benchmarks.instant_reward import awaited_stage, parse_arguments, round_outcome, stage_rows, verdict

T0 = 1_000.0


def test_each_stage_is_timed_from_t0_and_from_the_stage_before():
    marks = {"requested": T0 + 2.0, "started": T0 + 2.5, "finished": T0 + 12.5, "promoted": T0 + 12.5,
             "scored": T0 + 15.0, "visible": T0 + 15.25}

    rows = stage_rows(T0, marks)

    assert [row["stage"] for row in rows] == ["requested", "started", "finished", "promoted", "scored", "visible"]
    assert [row["at_s"] for row in rows] == [2.0, 2.5, 12.5, 12.5, 15.0, 15.25]
    assert [row["took_s"] for row in rows] == [2.0, 0.5, 10.0, 0.0, 2.5, 0.25]
    assert round_outcome(marks) == "refreshed"


def test_stages_are_ordered_by_the_pipeline_not_by_the_order_they_were_seen():
    marks = {"visible": T0 + 9, "requested": T0 + 1, "scored": T0 + 8, "started": T0 + 2, "finished": T0 + 5,
             "promoted": T0 + 5}

    assert [row["stage"] for row in stage_rows(T0, marks)] == [
        "requested", "started", "finished", "promoted", "scored", "visible"]


def test_a_challenger_the_gate_rejected_ends_the_round_without_scores():
    marks = {"requested": T0 + 1, "started": T0 + 2, "finished": T0 + 9, "rejected": T0 + 9}

    rows = stage_rows(T0, marks)

    assert rows[-1]["stage"] == "rejected" and rows[-1]["took_s"] == 0
    assert round_outcome(marks) == "rejected"


def test_a_failed_run_is_its_own_outcome():
    marks = {"requested": T0 + 1, "started": T0 + 2, "failed": T0 + 4}

    assert [row["took_s"] for row in stage_rows(T0, marks)] == [1, 1, 2]
    assert round_outcome(marks) == "failed"
    assert round_outcome({"requested": T0 + 1}) == "incomplete"


@pytest.mark.parametrize(("reached", "awaited"), [
    ([], "requested"),
    (["requested"], "started"),
    (["requested", "started"], "finished"),
    (["requested", "started", "finished"], "promoted"),
    (["requested", "started", "finished", "promoted"], "scored"),
    (["requested", "started", "finished", "promoted", "scored"], "visible"),
])
def test_a_stalled_round_names_the_stage_it_waits_for(reached, awaited):
    assert awaited_stage({name: T0 for name in reached}).name == awaited


def test_the_median_round_decides_and_rounds_that_refreshed_nothing_count_as_never():
    assert verdict([12.0, 40.0, 20.0]) == {"target_s": 30.0, "median_s": 20.0, "refreshed": 3, "not_refreshed": 0,
                                           "pass": True}
    # One kept champion: the median of 12, 20 and never is still 20.
    assert verdict([12.0, None, 20.0])["pass"]
    kept_twice = verdict([12.0, None, None])
    assert kept_twice["median_s"] is None and not kept_twice["pass"]
    assert kept_twice["not_refreshed"] == 2
    assert not verdict([29.0, 31.0, 35.0])["pass"]
    assert not verdict([])["pass"]


def test_the_project_must_hold_every_label_the_run_submits(capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--items", "100", "--seed-labels", "100", "--every", "20", "--rounds", "1"])
    assert "--items" in capsys.readouterr().err
    args = parse_arguments(["--items", "40", "--seed-labels", "20", "--every", "10", "--rounds", "2"])
    assert (args.mode, args.gate, args.trigger_seconds) == ("embedded", "product", None)
