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


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError):
        bradley_terry_loss(torch.zeros(2, 1), torch.zeros(2, 1))
