"""Direct preference optimisation through TRL's DPOTrainer.

The data layer hands over rows of `prompt` / `chosen` / `rejected` text already rendered through
the chat template; TRL tokenises them. With a LoRA model no reference copy is loaded: TRL uses the
base with the adapter disabled as the reference policy.
"""

from __future__ import annotations

from typing import Any

from loraforge.engine.stages import StageContext

NEEDS_CHAT_TEMPLATE = True


def build_trainer(ctx: StageContext) -> Any:
    from trl import DPOConfig, DPOTrainer

    spec = ctx.spec
    kwargs = dict(ctx.train_kwargs)
    loss_type = str(getattr(spec, "pref_loss", None) or "sigmoid")
    args = DPOConfig(
        **kwargs,
        beta=float(getattr(spec, "pref_beta", None) or 0.1),
        loss_type=[loss_type],
        label_smoothing=float(getattr(spec, "dpo_label_smoothing", None) or 0.0),
        max_length=getattr(spec, "cutoff_len", None),
        dataset_num_proc=None,
    )
    return DPOTrainer(
        model=ctx.model,
        ref_model=None,
        args=args,
        train_dataset=ctx.data.train_dataset,
        eval_dataset=ctx.data.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
