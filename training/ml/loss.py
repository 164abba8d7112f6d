"""The Bradley-Terry pairwise loss, as TRL's RewardTrainer computes it, plus ties and soft labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
    center_rewards_coefficient: float | None = None,
    tie: torch.Tensor | None = None,
    confidence: torch.Tensor | None = None,
) -> torch.Tensor:
    """mean over pairs of the per-pair loss + coeff * mean((r_c + r_r)^2).

    chosen_rewards, rejected_rewards, margin and confidence are (B,) float,
    tie is (B,) bool; returns a scalar. With d = r_c - r_r, a preference pair
    costs -logsigmoid(d - margin), as in TRL: the margin asks strongly
    preferred pairs to be separated by at least that much (Llama 2).

    ``confidence`` p is the probability that chosen really is better (a
    weighted vote of annotators who disagreed); the pair then costs the
    cross-entropy against p, -p * logsigmoid(d - margin) - (1 - p) *
    logsigmoid(margin - d), smallest where d - margin = logit(p) rather than
    at d = infinity. p = 1 is the plain loss above.

    A tie pair is the case p = 1/2 without margin: 0.5 * (-logsigmoid(d) -
    logsigmoid(-d)), symmetric in the two responses and smallest (log 2) at
    equal rewards; a tie ignores its margin and confidence. All pairs share
    one mean, so a tie weighs as much as a preference. The centering term
    keeps rewards near zero so that scores of different prompts stay
    comparable (TRL's center_rewards_coefficient); it covers every pair.
    """
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.dim() != 1:
        raise ValueError(
            f"expected two (B,) tensors, got {tuple(chosen_rewards.shape)} and "
            f"{tuple(rejected_rewards.shape)}"
        )
    difference = chosen_rewards - rejected_rewards  # (B,)
    if margin is not None:
        difference_past_margin = difference - (margin if tie is None else torch.where(tie, 0.0, margin))
    else:
        difference_past_margin = difference
    if tie is not None:
        half = torch.full_like(difference, 0.5)
        confidence = torch.where(tie, half, confidence if confidence is not None else 1.0)
    if confidence is None:
        losses = -F.logsigmoid(difference_past_margin)  # (B,)
    else:
        losses = -(
            confidence * F.logsigmoid(difference_past_margin)
            + (1 - confidence) * F.logsigmoid(-difference_past_margin)
        )  # (B,)
    loss = losses.mean()
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * torch.mean((chosen_rewards + rejected_rewards) ** 2)
    return loss
