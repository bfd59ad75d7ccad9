"""Collators: padded batches, packed rows, and padding-free neat packing.

All pad on the right to the longest row in the batch (optionally rounded up to a multiple), with
label -100 on padding so the loss never sees it.

Neat packing sends no attention_mask but `position_ids` that restart at 0 for every example of a
pack. transformers 5 turns restarting position ids into a block-diagonal causal mask on the
eager/SDPA path (`masking_utils.find_packed_sequence_indices`) and into variable-length attention
with flash-attention 2, so no token ever attends to another example in its pack. Padding at the end
of a row gets its own restarting positions, i.e. it forms a separate segment nobody attends to.

Both collators add `use_cache: False`. Training never needs a KV cache, and in transformers 5 a
model called with use_cache=True builds a DynamicCache, which *disables* the packed-sequence mask
detection (it only runs without past_key_values): packs would silently attend across examples.
Setting `model.config.use_cache = False` in the runtime has the same effect; this makes it safe by
default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


def _target_len(longest: int, multiple: int | None) -> int:
    if multiple and longest % multiple:
        return longest + multiple - longest % multiple
    return longest


def _right_padded(
    features: list[dict[str, Any]], pad_token_id: int, multiple: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids (pad id on padding) and labels (-100 on padding), right-padded to a common width."""
    import torch

    width = _target_len(max(len(f["input_ids"]) for f in features), multiple)
    n = len(features)
    input_ids = torch.full((n, width), pad_token_id, dtype=torch.long)
    labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        input_ids[i, :k] = torch.as_tensor(f["input_ids"], dtype=torch.long)
        labels[i, :k] = torch.as_tensor(f["labels"], dtype=torch.long)
    return input_ids, labels


@dataclass
class PaddedCollator:
    """Dynamic padding: input_ids (pad id), attention_mask (0 on padding), labels (-100 on padding)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        input_ids, labels = _right_padded(features, self.pad_token_id, self.pad_to_multiple_of)
        attention = torch.zeros(input_ids.shape, dtype=torch.long)
        for i, f in enumerate(features):
            attention[i, : len(f["input_ids"])] = 1
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "use_cache": False}


@dataclass
class NeatPackingCollator:
    """Padding-free packs: input_ids, labels and per-example restarting position_ids, no attention_mask."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        input_ids, labels = _right_padded(features, self.pad_token_id, self.pad_to_multiple_of)
        n, width = input_ids.shape
        # padding restarts at 0 too, so it is a segment of its own
        position_ids = torch.arange(width, dtype=torch.long).repeat(n, 1)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            position_ids[i, :k] = torch.as_tensor(f["position_ids"], dtype=torch.long)
            if k < width:
                position_ids[i, k:] = torch.arange(width - k, dtype=torch.long)
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "use_cache": False}


@dataclass
class PaddingFreeCollator:
    """The whole batch as ONE row without padding, for variable-length attention (speed.py).

    Rows are concatenated; `position_ids` restart at 0 at every segment start - each example of an
    unpacked batch, each example of a neat pack (its own restarting positions), or each LF-style
    pack (continuous positions inside it) - and `cu_seq_lens_q/k` / `max_length_q/k` give the
    segment boundaries, which is what flash-attention's varlen kernels and our CPU attention read.
    The label at each segment start becomes -100: in a padded batch that token is never a target
    (the shift drops it), while here the previous segment's last token would otherwise predict it.
    So the per-example loss, the label count (num_items_in_batch) and the non-padding token count
    equal those of the padded batch with the same rows.
    """

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import numpy as np
        import torch

        ids = np.concatenate([np.asarray(f["input_ids"], dtype=np.int64) for f in features])
        labels = np.concatenate([np.asarray(f["labels"], dtype=np.int64) for f in features])
        if "position_ids" in features[0]:
            pos = np.concatenate([np.asarray(f["position_ids"], dtype=np.int64) for f in features])
        else:
            pos = np.concatenate([np.arange(len(f["input_ids"]), dtype=np.int64) for f in features])
        starts = np.flatnonzero(pos == 0)
        if starts.size == 0 or starts[0] != 0:  # defensive: a row must open a segment
            starts = np.concatenate([[0], starts])
        labels[starts] = IGNORE_INDEX
        cu = np.append(starts, len(ids)).astype(np.int32)
        longest = int(np.diff(cu).max()) if len(cu) > 1 else 0
        cu_t = torch.from_numpy(cu)
        return {
            "input_ids": torch.from_numpy(ids).unsqueeze(0),
            "labels": torch.from_numpy(labels).unsqueeze(0),
            "position_ids": torch.from_numpy(pos).unsqueeze(0),
            "cu_seq_lens_q": cu_t,
            "cu_seq_lens_k": cu_t,
            "max_length_q": longest,
            "max_length_k": longest,
            "use_cache": False,
        }
