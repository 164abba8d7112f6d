"""The Bradley-Terry pairwise loss, exactly as TRL's RewardTrainer computes it."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
) -> torch.Tensor:
    """mean(-logsigmoid(r_c - r_r - margin)) + coeff * mean((r_c + r_r)^2).

    chosen_rewards, rejected_rewards and margin are (B,); returns a scalar.
    The margin asks strongly preferred pairs to be separated by at least that
    much (Llama 2); the centering term keeps rewards near zero so that scores
    of different prompts stay comparable (TRL's center_rewards_coefficient).
    """
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.dim() != 1:
        raise ValueError(
            f"expected two (B,) tensors, got {tuple(chosen_rewards.shape)} and "
            f"{tuple(rejected_rewards.shape)}"
        )
    difference = chosen_rewards - rejected_rewards
    if margin is not None:
        difference = difference - margin
    loss = -F.logsigmoid(difference).mean()
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * torch.mean((chosen_rewards + rejected_rewards) ** 2)
    return loss
