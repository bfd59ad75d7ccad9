"""Perplexity over the labelled tokens, weighted by token count (as training's loss is).

A set's perplexity is exp(total negative log-likelihood / total labelled tokens), not the mean of
per-sample perplexities: a long answer weighs as many tokens as it has. Labels are the training
labels (prompt tokens masked with -100), so an SFT set measures the answers, a text set every token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

IGNORE_INDEX = -100


@dataclass
class NllTotal:
    """A running sum of negative log-likelihood and of the tokens it covers."""

    nll: float = 0.0
    tokens: int = 0

    def add(self, nll: float, tokens: int) -> None:
        self.nll += nll
        self.tokens += tokens

    @property
    def perplexity(self) -> float:
        """exp(mean NLL); inf when nothing was labelled (no tokens, nothing measured)."""
        if self.tokens == 0:
            return math.inf
        return math.exp(self.nll / self.tokens)


def batch_nll(logits: Any, labels: Any) -> tuple[float, int]:
    """Summed next-token NLL and the count of labelled positions of one batch (torch tensors).

    `logits` [batch, seq, vocab] predicts position t+1 from position t, as a causal LM does.
    """
    return aligned_nll(logits[:, :-1, :], labels[:, 1:])


def aligned_nll(logits: Any, targets: Any) -> tuple[float, int]:
    """Summed NLL of `targets` [..., n] under `logits` [..., n, vocab] (already shifted), and its count.

    Positions whose target is IGNORE_INDEX count for nothing. Callers that computed logits only at
    the positions that have a target (`logits_to_keep`) pass them here directly.
    """
    import torch
    import torch.nn.functional as F

    mask = targets != IGNORE_INDEX
    count = int(mask.sum().item())
    if count == 0:
        return 0.0, 0
    # Only the labelled positions go through log-softmax: a long prompt costs no full-vocab row.
    picked = logits[mask].float()
    with torch.no_grad():
        nll = F.cross_entropy(picked, targets[mask], reduction="sum")
    return float(nll.item()), count
