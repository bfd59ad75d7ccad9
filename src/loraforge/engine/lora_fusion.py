"""One matmul per LoRA layer instead of three plus two passes over the output (`fused_lora`).

PEFT computes a LoRA linear layer as `base(x) + lora_B(lora_A(dropout(x))) * scaling`: next to the
frozen matmul it runs two thin matmuls whose output is as large as the layer's, then a multiply and
an add over that output, and in the backward pass the mirror of each. On CPU those thin matmuls and
elementwise passes are memory-bound and cost about a fifth of a step of a small model.

With no dropout the same function is `x @ (W + scaling * B @ A).T`, and its gradients are
  dx = g @ (W + s B A),   dB = s * g.T @ (x @ A.T),   dA = s * (g @ B).T @ x,
so here each eligible layer runs one full-size matmul forward and one backward, plus rank-r thin
ones for the adapter gradients, in the orientation BLAS runs fastest. `W + s B A` is rebuilt on
the fly (out x in, cheap next to a batch of tokens) and never kept, so memory is lower than PEFT's
path. The result differs from PEFT's only by float rounding.

Eligible layers: PEFT `lora.Linear` over a plain fp32 `nn.Linear`, one active plain-LoRA adapter,
no dropout, frozen base weights. Anything else (bf16/fp16 weights, where adding the small update to
W would round it away; quantised bases; DoRA and other variants; dropout; several adapters; adapters
disabled or merged at run time, e.g. DPO's reference pass) takes PEFT's own forward, decided on each
call.
"""

from __future__ import annotations

import types
from typing import Any

_function: Any = None


def _make_function() -> Any:
    import torch

    class MergedLoraLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any, weight: Any, bias: Any, a: Any, b: Any, scaling: float) -> Any:
            w_eff = torch.addmm(weight, b, a, alpha=scaling)
            ctx.save_for_backward(x, weight, a, b)
            ctx.scaling = scaling
            ctx.has_bias = bias is not None
            return torch.nn.functional.linear(x, w_eff, bias)

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            x, weight, a, b = ctx.saved_tensors
            s = ctx.scaling
            g = grad_out.reshape(-1, grad_out.shape[-1])
            x2 = x.reshape(-1, x.shape[-1])
            dx = db = da = dbias = None
            if ctx.needs_input_grad[0]:
                dx = torch.mm(g, torch.addmm(weight, b, a, alpha=s)).view(x.shape)
            # The adapter gradients are thin (rank r) products over all N tokens. Written as
            # (r x N) @ (N x k) they run several times faster in BLAS than the (k x N) @ (N x r)
            # shapes autograd would use (measured 3-6x on CPU), so build the transposed factors.
            if ctx.needs_input_grad[4]:
                h_t = torch.mm(a, x2.t())  # (x @ A.T).T, r x N
                db = torch.mm(h_t, g).t().mul(s)  # (out, r)
            if ctx.needs_input_grad[3]:
                u_t = torch.mm(b.t(), g.t())  # (g @ B).T, r x N
                da = torch.mm(u_t, x2).mul_(s)  # (r, in)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                dbias = g.sum(0)
            return dx, None, dbias, da, db, None

    return MergedLoraLinear


def _single_plain_adapter(layer: Any) -> str | None:
    """The one active vanilla-LoRA adapter without dropout, or None when PEFT's path is needed."""
    import torch

    active = layer.active_adapters
    if layer.disable_adapters or layer.merged or len(active) != 1:
        return None
    name = active[0]
    if name not in layer.lora_A or name in getattr(layer, "lora_variant", {}):
        return None
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if getattr(layer, "lora_bias", {}).get(name, False):
        return None
    return str(name)


def _eligible_layer(layer: Any) -> bool:
    import torch
    from peft.tuners.lora.layer import Linear as LoraLinear

    if type(layer) is not LoraLinear:  # subclasses (quantised bases) compute differently
        return False
    base = layer.base_layer
    return (
        all(isinstance(d, torch.nn.Identity) for d in layer.lora_dropout.values())
        and type(base) is torch.nn.Linear
        and base.weight.dtype == torch.float32
        and not base.weight.requires_grad
        and not getattr(layer, "fan_in_fan_out", False)
    )


def _fused_forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    """Replacement `forward` bound to one LoRA layer; falls back to PEFT's per call."""
    name = None if (args or kwargs) else _single_plain_adapter(self)
    if name is None or x.dtype != self.base_layer.weight.dtype:
        return self._peft_forward(x, *args, **kwargs)
    a = self.lora_A[name].weight
    b = self.lora_B[name].weight
    if a.dtype != x.dtype or b.dtype != x.dtype:
        return self._peft_forward(x, *args, **kwargs)
    global _function
    if _function is None:
        _function = _make_function()
    base = self.base_layer
    return _function.apply(x, base.weight, base.bias, a, b, float(self.scaling[name]))


def enable(model: Any) -> int:
    """Route every eligible LoRA layer of `model` through the merged matmul; returns how many.
    Instance-level: nothing in the state dict or the saved adapter changes."""
    count = 0
    for module in model.modules():
        if _eligible_layer(module) and not hasattr(module, "_peft_forward"):
            module._peft_forward = module.forward
            module.forward = types.MethodType(_fused_forward, module)
            count += 1
    return count


def disable(model: Any) -> None:
    """Give every patched layer its PEFT forward back."""
    for module in model.modules():
        if hasattr(module, "_peft_forward"):
            del module.forward  # the instance attribute; the class's forward shows through again
            del module._peft_forward
