import math

import pytest
import torch

from training.ml.loss import bradley_terry_loss


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))


def test_plain_loss_matches_hand_computation():
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    # differences are +1 and -1; -log sigmoid(d) = softplus(-d)
    assert loss.item() == pytest.approx((softplus(-1) + softplus(1)) / 2, abs=1e-6)


def test_margin_is_subtracted_inside_the_sigmoid():
    loss = bradley_terry_loss(
        torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), margin=torch.tensor([0.5, 0.0])
    )
    # differences become 0.5 and -1
    assert loss.item() == pytest.approx((softplus(-0.5) + softplus(1)) / 2, abs=1e-6)


def test_centering_adds_mean_squared_reward_sum():
    chosen, rejected = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    loss = bradley_terry_loss(chosen, rejected, center_rewards_coefficient=0.01)
    # both differences are 1; sums are 1 and 3, mean square (1 + 9) / 2 = 5
    assert loss.item() == pytest.approx(softplus(-1) + 0.01 * 5, abs=1e-6)


def test_margin_and_centering_together():
    chosen, rejected = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    margin = torch.tensor([1.0, 0.0, 2.0])
    loss = bradley_terry_loss(chosen, rejected, margin=margin, center_rewards_coefficient=0.1)
    # differences minus margins: 1, -2, -2; sums: 2, 0, 0
    expected = (softplus(-1) + softplus(2) + softplus(2)) / 3 + 0.1 * (4 + 0 + 0) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_gradient_pushes_chosen_up_and_rejected_down():
    chosen = torch.tensor([0.0], requires_grad=True)
    rejected = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(chosen, rejected).backward()
    # d/dr_c of softplus(r_r - r_c) at 0 is -sigmoid(0) = -0.5
    assert chosen.grad.item() == pytest.approx(-0.5)
    assert rejected.grad.item() == pytest.approx(0.5)


def test_ties_pull_both_ways_and_share_the_mean_with_preferences():
    chosen = torch.tensor([1.0, 0.0, 2.0, 0.5])
    rejected = torch.tensor([0.0, 1.0, -1.0, 0.5])
    margin = torch.tensor([0.5, 3.0, 0.0, 0.0])  # a tie ignores its margin
    tie = torch.tensor([False, True, True, True])
    loss = bradley_terry_loss(chosen, rejected, margin=margin, tie=tie)
    # d = 1 (preference, minus margin 0.5), then ties at d = -1, 3, 0:
    # a tie costs 0.5 * (softplus(-d) + softplus(d)); one mean over all 4 pairs
    expected = (
        softplus(-0.5)
        + 0.5 * (softplus(1) + softplus(-1))
        + 0.5 * (softplus(-3) + softplus(3))
        + 0.5 * (softplus(0) + softplus(0))
    ) / 4
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.8822683, abs=1e-6)


def test_tie_gradient_closes_the_gap_and_vanishes_at_equal_rewards():
    chosen = torch.tensor([2.0, 0.3], requires_grad=True)
    rejected = torch.tensor([0.0, 0.3], requires_grad=True)
    bradley_terry_loss(chosen, rejected, tie=torch.tensor([True, True])).backward()
    # d/dr_a of 0.5 * (softplus(-d) + softplus(d)) is 0.5 * (2 sigmoid(d) - 1), over B = 2
    slope = 0.5 * (2 / (1 + math.exp(-2.0)) - 1) / 2
    assert chosen.grad.tolist() == pytest.approx([slope, 0.0], abs=1e-6)
    assert rejected.grad.tolist() == pytest.approx([-slope, 0.0], abs=1e-6)


def test_no_tie_flags_is_the_plain_loss():
    chosen, rejected = torch.tensor([1.0, -2.0]), torch.tensor([0.0, 0.5])
    assert bradley_terry_loss(chosen, rejected, tie=torch.tensor([False, False])).item() == pytest.approx(
        bradley_terry_loss(chosen, rejected).item(), abs=1e-7
    )


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2, 1), torch.zeros(2, 1))


def test_confidence_is_a_soft_label_on_the_gap_past_the_margin():
    chosen, rejected = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    margin = torch.tensor([0.5, 0.0])
    confidence = torch.tensor([0.8, 1.0])
    loss = bradley_terry_loss(chosen, rejected, margin=margin, confidence=confidence)
    # pair 1: x = d - margin = 0.5, cost 0.8 * softplus(-0.5) + 0.2 * softplus(0.5);
    # pair 2 (certain): softplus(-0) = log 2
    expected = (0.8 * softplus(-0.5) + 0.2 * softplus(0.5) + math.log(2)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_confidence_one_is_the_plain_loss():
    chosen, rejected = torch.tensor([1.5, -0.25, 3.0]), torch.tensor([0.0, 1.0, 2.0])
    plain = bradley_terry_loss(chosen, rejected)
    certain = bradley_terry_loss(chosen, rejected, confidence=torch.ones(3))
    assert certain.item() == plain.item()


def test_an_unsure_pair_stops_pushing_at_the_gap_its_confidence_implies():
    # With p = 0.75 the loss is smallest at d = logit(0.75) = log 3: no gradient there.
    chosen = torch.tensor([math.log(3)], requires_grad=True)
    rejected = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(chosen, rejected, confidence=torch.tensor([0.75])).backward()
    assert chosen.grad.item() == pytest.approx(0.0, abs=1e-6)


def test_a_tie_ignores_its_confidence():
    chosen, rejected = torch.tensor([2.0]), torch.tensor([0.0])
    loss = bradley_terry_loss(chosen, rejected, tie=torch.tensor([True]), confidence=torch.tensor([1.0]))
    assert loss.item() == pytest.approx(0.5 * (softplus(-2) + softplus(2)), abs=1e-6)
