"""Chunked linear + cross-entropy with the gradient computed on the way (`fused_lm_loss`).

The stock path materialises the logits of every scored position (N x vocab), keeps them for the
backward pass, and then allocates an equally large zero-filled gradient: on a small model that is
the largest tensor of the step (107 MB for 3,300 scored tokens and a vocabulary of 8,192), and on
CPU most of its cost is memory traffic and page faults, not arithmetic.

Here the output projection is evaluated a block of rows at a time; each block's log-sum-exp,
loss and softmax gradient are computed while the block is in cache, and only the gradient with
respect to the hidden states (N x hidden, small) is kept. The backward pass just scales it by the
incoming gradient. The mathematics is the same cross-entropy (sum over tokens of lse - logit of the
target); only the order of floating-point summation differs. The same matmuls are done (one forward,
one for the input gradient), so this costs no extra FLOPs.
"""

from __future__ import annotations

from typing import Any

# Elements of one logits block: about 8 MB of fp32 on CPU (stays in L3), larger on GPU where the
# per-launch overhead matters more than cache.
CPU_BLOCK_ELEMENTS = 1 << 21
GPU_BLOCK_ELEMENTS = 1 << 26
_MIN_ROWS = 32


def block_rows(vocab: int, device_type: str) -> int:
    budget = GPU_BLOCK_ELEMENTS if device_type == "cuda" else CPU_BLOCK_ELEMENTS
    return max(_MIN_ROWS, budget // max(vocab, 1))


def _make_function() -> Any:
    import torch

    class ChunkedLinearCrossEntropy(torch.autograd.Function):
        """forward(hidden (N, H), weight (V, H), targets (N,)) -> sum of per-token cross-entropy."""

        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, targets: Any) -> Any:
            need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            n = hidden.shape[0]
            rows = block_rows(weight.shape[0], hidden.device.type)
            grad_h = torch.empty_like(hidden) if need_h else None
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_w else None
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            for start in range(0, n, rows):
                end = min(start + rows, n)
                h_block, t_block = hidden[start:end], targets[start:end]
                # logits in the model's dtype, upcast for the loss: what the models' own loss does
                z = torch.mm(h_block, weight.t()).float()
                # log-sum-exp by hand so the exponentials are computed once and reused as the
                # softmax: max, subtract, exp and normalise in place (five passes, no temporaries)
                target_logit = z.gather(1, t_block.unsqueeze(1)).squeeze(1)
                peak = z.amax(dim=1, keepdim=True)
                z.sub_(peak).exp_()
                sums = z.sum(dim=1, keepdim=True)
                total += (sums.log().add_(peak).squeeze(1) - target_logit).sum()
                if not (need_h or need_w):
                    continue
                # softmax - one_hot(target)
                z.div_(sums)
                z[torch.arange(end - start, device=z.device), t_block] -= 1.0
                g = z.to(weight.dtype)
                if grad_h is not None:
                    torch.mm(g, weight, out=grad_h[start:end])
                if grad_w is not None:
                    grad_w.addmm_(g.t().float(), h_block.float())
            ctx.save_for_backward(
                grad_h if grad_h is not None else hidden.new_empty(0),
                grad_w if grad_w is not None else hidden.new_empty(0),
            )
            ctx.has = (need_h, need_w)
            ctx.weight_dtype = weight.dtype
            return total

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            grad_h, grad_w = ctx.saved_tensors
            need_h, need_w = ctx.has
            dh = grad_h * grad_out.to(grad_h.dtype) if need_h else None
            dw = (grad_w * grad_out).to(ctx.weight_dtype) if need_w else None
            return dh, dw, None

    return ChunkedLinearCrossEntropy


_function: Any = None


def linear_cross_entropy_sum(hidden: Any, weight: Any, targets: Any) -> Any:
    """Sum over rows of cross_entropy(hidden @ weight.T, targets); every target must be a class
    index (callers select the labelled positions first). Differentiable in hidden and weight."""
    global _function
    if _function is None:
        _function = _make_function()
    return _function.apply(hidden, weight, targets)
