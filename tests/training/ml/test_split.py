import pytest

from training.ml.data import PreferencePair
from training.ml.split import split_by_prompt


def pairs_for(prompt_ids, per_prompt=2):
    return [
        PreferencePair(prompt_id=prompt_id, context=(), chosen=f"c{k}", rejected=f"r{k}")
        for prompt_id in prompt_ids
        for k in range(per_prompt)
    ]


def prompt_ids(pairs):
    return {pair.prompt_id for pair in pairs}


def test_split_is_deterministic_and_disjoint_by_prompt():
    pairs = pairs_for([f"prompt-{i}" for i in range(200)])
    train, evaluation = split_by_prompt(pairs, 0.2, seed=7)
    again_train, again_eval = split_by_prompt(pairs, 0.2, seed=7)
    assert (train, evaluation) == (again_train, again_eval)
    assert not prompt_ids(train) & prompt_ids(evaluation)
    assert len(train) + len(evaluation) == len(pairs)
    # every prompt keeps both of its pairs on one side
    assert all(len([p for p in evaluation if p.prompt_id == pid]) == 2 for pid in prompt_ids(evaluation))
    assert 20 <= len(prompt_ids(evaluation)) <= 60  # about 40 of 200 prompts


def test_tie_pairs_follow_their_prompt():
    pairs = pairs_for([f"prompt-{i}" for i in range(60)])
    ties = [
        PreferencePair(prompt_id=f"prompt-{i}", context=(), chosen="x", rejected="y", tie=True) for i in range(60)
    ]
    train, evaluation = split_by_prompt(pairs + ties, 0.3, seed=0)
    plain_train, plain_eval = split_by_prompt(pairs, 0.3, seed=0)
    assert [p for p in train if not p.tie] == plain_train
    assert {p.prompt_id for p in evaluation if p.tie} == prompt_ids(plain_eval)
    assert {p.prompt_id for p in train if p.tie} == prompt_ids(plain_train)


def test_split_keeps_input_order():
    pairs = pairs_for([f"prompt-{i}" for i in range(50)])
    train, evaluation = split_by_prompt(pairs, 0.3, seed=0)
    assert train == [p for p in pairs if p in train]
    assert evaluation == [p for p in pairs if p in evaluation]


def test_seed_changes_the_split():
    pairs = pairs_for([f"prompt-{i}" for i in range(100)])
    assert split_by_prompt(pairs, 0.5, seed=0) != split_by_prompt(pairs, 0.5, seed=1)


def test_a_prompt_stays_on_its_side_when_data_grows():
    old = pairs_for([f"prompt-{i}" for i in range(100)])
    new = old + pairs_for([f"prompt-{i}" for i in range(100, 300)])
    _, old_eval = split_by_prompt(old, 0.2, seed=3)
    _, new_eval = split_by_prompt(new, 0.2, seed=3)
    assert prompt_ids(old_eval) == prompt_ids(new_eval) & prompt_ids(old)


@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.999])
def test_two_prompts_give_two_non_empty_halves(fraction):
    train, evaluation = split_by_prompt(pairs_for(["a", "b"]), fraction, seed=0)
    assert len(prompt_ids(train)) == 1 and len(prompt_ids(evaluation)) == 1


def test_zero_fraction_puts_everything_in_train():
    pairs = pairs_for(["a", "b", "c"])
    assert split_by_prompt(pairs, 0.0, seed=0) == (pairs, [])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_fraction_out_of_range_is_rejected(fraction):
    with pytest.raises(ValueError):
        split_by_prompt(pairs_for(["a"]), fraction, seed=0)
