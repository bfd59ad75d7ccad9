"""Supervised fine-tuning on `transformers.Trainer` with the data layer's own collator.

Not TRL's SFTTrainer: TRL 1.16 always swaps in a chunked LM-head loss that is ~2x slower on CPU
and uses more memory. The model's own causal-LM loss (mean over label tokens, with
`num_items_in_batch` under gradient accumulation) is the same mathematics LLaMA-Factory uses.

Exact speed switches act here: `padding_free` replaces the padded collator by one concatenated row
with variable-length attention, `sparse_lm_head` evaluates the output layer only where a label
exists (engine/speed.py), `fused_lm_loss` does that block by block with the gradient taken on the
way (engine/fused_loss.py), and `fused_lora` runs each LoRA layer as one matmul
(engine/lora_fusion.py). Batches are still drawn by the Trainer's seeded random sampler
(or the length-grouped one), so the rows of each step are the rows LLaMA-Factory draws.
"""

from __future__ import annotations

from typing import Any

from loraforge.engine.stages import StageContext

NEEDS_CHAT_TEMPLATE = True


def build_trainer(ctx: StageContext) -> Any:
    from transformers import Trainer, TrainingArguments

    from loraforge.engine import lora_fusion, speed
    from loraforge.engine.data import PaddingFreeCollator

    data = ctx.data
    spec = ctx.spec
    collator = data.collator
    previous_attn: str | None = None
    if getattr(spec, "padding_free", False) and collator is not None:
        previous_attn = speed.enable_padding_free(ctx.model)
        if previous_attn is not None:
            collator = PaddingFreeCollator(collator.pad_token_id)
    if getattr(spec, "fused_lora", False):
        lora_fusion.enable(ctx.model)
    head: speed.LabelOnlyHead | None = None
    if getattr(spec, "sparse_lm_head", False):
        try:
            head = speed.LabelOnlyHead(ctx.model, fused=bool(getattr(spec, "fused_lm_loss", False)))
        except (ValueError, AttributeError, NotImplementedError):
            head = None  # no separable output layer: the model's own loss

    class EngineTrainer(Trainer):
        """Changes to the stock Trainer: the data layer's batch sampler when it has one
        (length-grouped batches), the label-only loss (training and evaluation), and the original
        attention restored before anything is saved."""

        def get_train_dataloader(self) -> Any:
            sampler = data.batch_sampler(self._train_batch_size) if hasattr(data, "batch_sampler") else None
            if sampler is None:
                return super().get_train_dataloader()
            from torch.utils.data import DataLoader

            loader = DataLoader(
                self.train_dataset,  # type: ignore[arg-type]
                batch_sampler=sampler,
                collate_fn=self.data_collator,
                num_workers=self.args.dataloader_num_workers,
                pin_memory=self.args.dataloader_pin_memory,
            )
            return self.accelerator.prepare(loader)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if head is None or return_outputs or not model.training or "labels" not in inputs:
                return super().compute_loss(
                    model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
                )
            if not self.model_accepts_loss_kwargs:
                num_items_in_batch = None  # the stock path then means per batch and divides by GA
            loss, _ = speed.label_only_loss(model, head, inputs, num_items_in_batch)
            # Same multi-process scaling as Trainer.compute_loss (DDP averages gradients).
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return loss

        def prediction_step(
            self,
            model: Any,
            inputs: dict[str, Any],
            prediction_loss_only: bool,
            ignore_keys: list[str] | None = None,
        ) -> tuple[Any, Any, Any]:
            # Evaluation without metrics needs only the loss. The stock step builds full-vocabulary
            # logits for every position of the batch (batch x length x vocab floats, plus the loss's
            # temporaries of the same size): with long rows that is the run's largest allocation, far
            # above what a training step with the label-only head needs, and it is what drove the
            # process's resident memory up at every evaluation. The label-only head gives the same
            # loss (mean over the batch's label tokens) from the scored positions alone.
            if head is None or not prediction_loss_only or "labels" not in inputs:
                return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
            import torch

            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                loss, _ = speed.label_only_loss(model, head, inputs, None)
            return loss.detach(), None, None

        def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
            # A full model's config.json must name a standard attention, not our training-only one.
            speed.restore_attention(self.model, previous_attn)
            try:
                super()._save(output_dir, state_dict)
            finally:
                if previous_attn is not None and collator is not data.collator:
                    speed.enable_padding_free(self.model)

    args = TrainingArguments(**ctx.train_kwargs)
    return EngineTrainer(
        model=ctx.model,
        args=args,
        train_dataset=data.train_dataset,
        eval_dataset=data.eval_dataset,
        data_collator=collator,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
