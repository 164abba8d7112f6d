"""The Bradley-Terry pairwise loss, as TRL's RewardTrainer computes it, plus ties."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
    tie: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean over pairs of the per-pair loss + coeff * mean((r_c + r_r)^2).

    chosen_rewards, rejected_rewards and margin are (B,) float, tie is (B,)
    bool; returns a scalar. With d = r_c - r_r, a preference pair costs
    -logsigmoid(d - margin), as in TRL: the margin asks strongly preferred
    pairs to be separated by at least that much (Llama 2). A tie pair costs
    0.5 * (-logsigmoid(d) - logsigmoid(-d)), Bradley-Terry with target 0.5,
    which is symmetric in the two responses and smallest (log 2) at equal
    rewards; a tie ignores its margin. Both kinds share one mean, so a tie
    weighs as much as a preference. The centering term keeps rewards near zero
    so that scores of different prompts stay comparable (TRL's
    center_rewards_coefficient); it covers every pair.
    """
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.dim() != 1:
        raise ValueError(
            f"expected two (B,) tensors, got {tuple(chosen_rewards.shape)} and "
            f"{tuple(rejected_rewards.shape)}"
        )
    difference = chosen_rewards - rejected_rewards  # (B,)
    shifted = difference - margin if margin is not None else difference
    losses = -F.logsigmoid(shifted)  # (B,)
    if tie is not None:
        tie_losses = -0.5 * (F.logsigmoid(difference) + F.logsigmoid(-difference))  # (B,)
        losses = torch.where(tie, tie_losses, losses)
    loss = losses.mean()
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * torch.mean((chosen_rewards + rejected_rewards) ** 2)
    return loss
