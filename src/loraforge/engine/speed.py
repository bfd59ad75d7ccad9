"""Exact speed-ups for causal-LM training: same loss, less work.

Two independent pieces, each behind a spec switch:

* **Padding-free variable-length attention** (`padding_free`). A batch arrives as ONE concatenated
  row (`PaddingFreeCollator`) with `cu_seq_lens_q` marking where each example (or LF-style pack)
  starts. The registered attention function runs causal SDPA on each segment separately, so no
  token attends across a segment boundary and no FLOP is spent on padding. Position ids restart per
  segment, so RoPE sees exactly the positions it sees in a right-padded batch: the per-example loss
  is the loss of the padded batch (up to float summation order).
  On CUDA the same kwargs drive flash-attention 2's varlen kernel when the spec selects `fa2`.
* **Label-only LM head** (`sparse_lm_head`). The output projection and cross-entropy are evaluated
  only at positions whose next token has a label. The full-vocabulary logits of prompt and padding
  positions never influence the loss (their targets are -100), so skipping them is exact; on this
  data that is most of the LM-head work, the single largest matmul of a small model.
  With `fused_lm_loss` the head does not even build those logits at once: the hidden states are
  captured and fed to a blocked linear + cross-entropy (engine/fused_loss.py).
"""

from __future__ import annotations

import itertools
from typing import Any

ATTN_NAME = "loraforge_varlen"
IGNORE_INDEX = -100

_registered = False


def _varlen_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers attention-interface function: causal SDPA per `cu_seq_lens_q` segment.

    query (B, H, T, D), key/value (B, Hkv, T, D); returns (B, T, H, D) as every interface function
    does. Without `cu_seq_lens_q` (generation, or a batch not built by PaddingFreeCollator) it is
    plain SDPA, with the mask transformers built, so the model stays usable outside training.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    if cu is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            is_causal=is_causal,
            **kwargs,
        )
    bounds = cu.tolist() if isinstance(cu, torch.Tensor) else list(cu)
    gqa = query.shape[1] != key.shape[1]
    p = dropout if module.training else 0.0
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if len(bounds) == 2:  # one segment: no slicing, no concatenation
        out = sdpa(query, key, value, dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa)
        return out.transpose(1, 2).contiguous(), None
    # torch.split, not slicing: a slice's backward writes into a zero-filled full-size gradient
    # per segment (O(segments x T) memory traffic); split's backward is one concatenation.
    sizes = [e - s for s, e in itertools.pairwise(bounds)]
    parts = zip(query.split(sizes, dim=2), key.split(sizes, dim=2), value.split(sizes, dim=2), strict=True)
    # Concatenate the (B, T, H, D) views along T: one copy gives the contiguous result (concatenating
    # along T of (B, H, T, D) and then making the transpose contiguous would copy twice).
    out = torch.cat(
        [
            sdpa(q, k, v, dropout_p=p, is_causal=True, scale=scaling, enable_gqa=gqa).transpose(1, 2)
            for q, k, v in parts
        ],
        dim=1,
    )
    return out, None


def _varlen_mask(**kwargs: Any) -> Any:
    """Mask factory for our attention name. Padding-free batches carry no attention_mask: the
    segments are the mask, so nothing is built (transformers would otherwise materialise a
    T x T block-diagonal mask from the restarting position ids). A padded batch (eval through
    another collator) gets the ordinary SDPA mask."""
    if kwargs.get("attention_mask") is None:  # transformers passes everything by keyword
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(**kwargs)


def register_attention() -> str:
    """Register the varlen attention (and its mask factory) with transformers; returns its name."""
    global _registered
    if not _registered:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface

        AttentionInterface.register(ATTN_NAME, _varlen_attention)
        AttentionMaskInterface.register(ATTN_NAME, _varlen_mask)
        _registered = True
    return ATTN_NAME


def _inner_model(model: Any) -> Any:
    """The transformers PreTrainedModel inside a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def enable_padding_free(model: Any) -> str | None:
    """Switch the model to varlen attention; returns the previous implementation name, or None
    when the model cannot (remote code without the attention interface): the caller keeps padding."""
    inner = _inner_model(model)
    config = getattr(inner, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if config is None or previous in (None, "flash_attention_2", "flash_attention_3"):
        # FA2/FA3 already do varlen from the same cu_seq_lens kwargs; keep them.
        return previous if previous is not None and previous.startswith("flash_attention") else None
    if not getattr(inner, "_supports_attention_backend", False):
        return None
    name = register_attention()
    try:
        inner.set_attn_implementation(name)
    except (ValueError, AttributeError, KeyError):
        return None
    return str(previous)


def restore_attention(model: Any, previous: str | None) -> None:
    """Put the model's original attention back (saved configs and later generation use it)."""
    inner = _inner_model(model)
    if previous and getattr(inner.config, "_attn_implementation", None) == ATTN_NAME:
        inner.set_attn_implementation(previous)


_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def _plain_linear_head(inner: Any, head: Any) -> bool:
    """True when logits are exactly hidden @ head.weight.T: a bias-free nn.Linear and a model that
    does not scale or soft-cap its logits afterwards (Gemma 2, Cohere, Granite do)."""
    import torch

    if type(head) is not torch.nn.Linear or head.bias is not None:
        return False
    config = getattr(inner, "config", None)
    text_config = getattr(config, "get_text_config", lambda: config)()
    for cfg in {id(config): config, id(text_config): text_config}.values():
        for name in _LOGIT_TRANSFORMS:
            value = getattr(cfg, name, None)
            if value not in (None, 1, 1.0):
                return False
    return True


class LabelOnlyHead:
    """Forward pre-hook on the output embedding: while armed with a (B, T-1) bool mask of
    positions whose next token is a label, the head receives only those hidden states, so the
    model returns logits of shape (N, vocab) for exactly the N scored positions.

    With `fused` (a plain linear head), the hook keeps those N hidden states in `captured` and
    hands the head zero rows instead: the loss is then computed block by block from the captured
    states and the head's weight, and full logits never exist.

    A pre-hook rather than a replacement module: state dicts, tied weights, PEFT adapters on the
    head and DDP's forward all stay untouched, and when disarmed it does nothing.
    """

    def __init__(self, model: Any, fused: bool = False) -> None:
        inner = _inner_model(model)
        head = inner.get_output_embeddings()
        if head is None:
            raise ValueError("model has no output embedding")
        self.module = head
        self.fused = fused and _plain_linear_head(inner, head)
        self.mask: Any = None
        self.captured: Any = None
        self.handle = head.register_forward_pre_hook(self._hook)

    def _hook(self, module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self.mask is None or not args:
            return None
        hidden = args[0][:, :-1][self.mask]
        if self.fused:
            self.captured = hidden
            return (hidden[:0], *args[1:])
        return (hidden, *args[1:])

    def remove(self) -> None:
        self.handle.remove()


def label_only_loss(
    model: Any, head: LabelOnlyHead, inputs: dict[str, Any], num_items_in_batch: Any
) -> tuple[Any, Any]:
    """The causal-LM loss with logits only where a label exists.

    Same reduction as transformers' ForCausalLMLoss: sum over label tokens / num_items_in_batch
    when the Trainer counted them (gradient accumulation), else the mean. Returns (loss, outputs).
    """
    import torch

    labels = inputs["labels"]
    shifted = labels[:, 1:]
    keep = shifted != IGNORE_INDEX
    targets = shifted[keep]
    model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "shift_labels")}
    head.mask = keep
    try:
        outputs = model(**model_inputs)
        captured, head.captured = head.captured, None
    finally:
        head.mask = None
    if head.fused:
        from loraforge.engine.fused_loss import linear_cross_entropy_sum

        if captured is None or captured.shape[0] != targets.shape[0]:
            raise RuntimeError(
                "fused_lm_loss: the output layer did not see the scored positions; set `fused_lm_loss: false`"
            )
        total = linear_cross_entropy_sum(captured, head.module.weight, targets)
    else:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
            raise RuntimeError(
                f"sparse_lm_head: the model reshapes its logits ({tuple(logits.shape)}); "
                "set `sparse_lm_head: false`"
            )
        total = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="sum")
    if num_items_in_batch is None:
        loss = total / max(int(targets.numel()), 1)
    else:
        if isinstance(num_items_in_batch, torch.Tensor):
            num_items_in_batch = num_items_in_batch.to(total.device)
        loss = total / num_items_in_batch
    return loss, outputs
