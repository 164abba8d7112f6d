import torch

from training.ml.batching import batch_order, collate_pairs, pad_sequences, plan_passes
from training.ml.data import EncodedPair


def encoded(prompt_id, chosen_length, rejected_length=3, margin=0.0, tie=False, confidence=1.0):
    return EncodedPair(prompt_id, [7] * chosen_length, [8] * rejected_length, margin, None, tie, confidence)


def test_collate_stacks_chosen_then_rejected_with_dynamic_padding():
    batch = [encoded("a", 2, 4, margin=1.0), encoded("b", 5, 1, confidence=0.75)]
    inputs = collate_pairs(batch, pad_token_id=0)
    assert inputs["input_ids"].shape == (4, 5)  # (2B, T), T = longest text of the batch
    assert inputs["input_ids"].tolist() == [
        [7, 7, 0, 0, 0],
        [7, 7, 7, 7, 7],
        [8, 8, 8, 8, 0],
        [8, 0, 0, 0, 0],
    ]
    assert inputs["attention_mask"].sum(dim=1).tolist() == [2, 5, 4, 1]
    assert torch.equal(inputs["margin"], torch.tensor([1.0, 0.0]))
    assert inputs["tie"].tolist() == [False, False]
    assert inputs["confidence"].tolist() == [1.0, 0.75]


def test_tie_pairs_are_batched_like_preferences():
    pairs = [encoded("a", 4), encoded("a", 5, 5, tie=True), encoded("b", 2, tie=True), encoded("c", 6)]
    for group_by_length in (True, False):
        batches = batch_order(pairs, 3, seed=0, group_by_length=group_by_length)
        assert sorted(i for batch in batches for i in batch) == [0, 1, 2, 3]
        flat = [i for batch in batches for i in batch]
        assert abs(flat.index(0) - flat.index(1)) == 1  # prompt "a" stays together, tie or not
    inputs = collate_pairs([pairs[i] for i in (1, 0, 2)], pad_token_id=0)
    assert inputs["tie"].dtype == torch.bool and inputs["tie"].tolist() == [True, False, True]


def test_left_padding_is_honoured():
    input_ids, attention_mask = pad_sequences([[1, 2], [3]], pad_token_id=0, padding_side="left")
    assert input_ids.tolist() == [[1, 2], [0, 3]]
    assert attention_mask.tolist() == [[1, 1], [0, 1]]


def toy_encoded():
    pairs = []
    for prompt in range(40):
        for _ in range(prompt % 3 + 1):
            pairs.append(encoded(f"p{prompt}", 5 + (prompt * 7) % 30))
    return pairs


def test_batch_order_covers_every_pair_once_and_is_deterministic():
    pairs = toy_encoded()
    for group_by_length in (True, False):
        batches = batch_order(pairs, 4, seed=1, group_by_length=group_by_length)
        assert sorted(i for batch in batches for i in batch) == list(range(len(pairs)))
        assert all(1 <= len(batch) <= 4 for batch in batches)
        assert batches == batch_order(pairs, 4, seed=1, group_by_length=group_by_length)
        assert batches != batch_order(pairs, 4, seed=2, group_by_length=group_by_length)


def test_one_prompts_pairs_stay_adjacent():
    pairs = toy_encoded()
    flat = [i for batch in batch_order(pairs, 4, seed=0, group_by_length=False) for i in batch]
    prompts_in_order = [pairs[i].prompt_id for i in flat]
    runs = [p for k, p in enumerate(prompts_in_order) if k == 0 or p != prompts_in_order[k - 1]]
    assert len(runs) == len(set(runs))


def test_length_grouped_prompts_span_as_few_batches_as_a_contiguous_run():
    pairs = toy_encoded()
    batches = batch_order(pairs, 2, seed=0, group_by_length=True)
    for prompt_id in {pair.prompt_id for pair in pairs}:
        count = sum(pair.prompt_id == prompt_id for pair in pairs)
        spanned = sum(any(pairs[i].prompt_id == prompt_id for i in batch) for batch in batches)
        assert spanned <= -(-count // 2) + 1  # a run of `count` pairs may straddle one more boundary


def test_length_grouped_batches_do_not_run_longest_to_shortest():
    pairs = toy_encoded()
    widths = [max(pairs[i].length for i in batch) for batch in batch_order(pairs, 4, seed=0, group_by_length=True)]
    assert widths[0] == max(widths)
    assert widths[1:] != sorted(widths[1:], reverse=True)


def test_length_grouping_puts_the_longest_batch_first_and_cuts_padding():
    pairs = toy_encoded()
    grouped = batch_order(pairs, 4, seed=0, group_by_length=True)
    shuffled = batch_order(pairs, 4, seed=0, group_by_length=False)

    def padded_tokens(batches):
        return sum(len(batch) * max(pairs[i].length for i in batch) for batch in batches)

    assert max(pairs[i].length for i in grouped[0]) == max(pair.length for pair in pairs)
    assert padded_tokens(grouped) < padded_tokens(shuffled)


def test_width_rounds_up_to_a_multiple_but_not_past_the_cap():
    def width(lengths, **kwargs):
        return pad_sequences([[1] * n for n in lengths], pad_token_id=0, **kwargs)[0].shape[1]

    assert width([3, 5], multiple_of=16) == 16
    assert width([3, 17], multiple_of=16, max_width=256) == 32
    assert width([3, 250], multiple_of=16, max_width=250) == 250
    assert width([3, 5], multiple_of=None) == 5
    input_ids, attention_mask = pad_sequences([[4, 5]], pad_token_id=0, multiple_of=4)
    assert input_ids.tolist() == [[4, 5, 0, 0]] and attention_mask.tolist() == [[1, 1, 0, 0]]


def test_steps_of_small_batches_hold_the_pairs_of_one_large_batch():
    pairs = toy_encoded()  # 80 pairs: 10 steps of 8, 5 of 16 (one mega-chunk either way)
    large = batch_order(pairs, 8, seed=3, group_by_length=True)
    small = batch_order(pairs, 4, seed=3, group_by_length=True, batches_per_step=2)
    assert [sorted(small[i] + small[i + 1]) for i in range(0, len(small), 2)] == [sorted(b) for b in large]
    # 10 batches in steps of 3: the short last step (1 batch, the shortest
    # pairs of the sorted chunk) is not shuffled into the middle.
    odd = batch_order(pairs, 8, seed=3, group_by_length=True, batches_per_step=3)
    widths = [max(pairs[i].length for i in batch) for batch in odd]
    assert widths[0] == max(widths) and widths[-1] == min(widths) < min(widths[:-1])


def test_passes_trade_padding_against_a_cost_per_pass():
    lengths = [100, 10, 12, 98, 11, 100]
    # One pass pads 6 x 100 = 600 tokens; splitting off the three short rows
    # pads 3 x 100 + 3 x 12 = 336, worth a second pass that costs 128.
    assert plan_passes(lengths, pass_cost_tokens=128) == [([0, 5, 3], 100), ([2, 4, 1], 12)]
    # A pass dearer than the padding it saves: one pass, longest row first.
    assert plan_passes(lengths, pass_cost_tokens=1000) == [([0, 5, 3, 2, 4, 1], 100)]
    # Free passes: every distinct length alone (equal lengths never split).
    assert plan_passes([5, 7, 5], pass_cost_tokens=0) == [([1], 7), ([0, 2], 5)]
    assert plan_passes([]) == []
