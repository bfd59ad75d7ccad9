"""Supervised fine-tuning on `transformers.Trainer` with the data layer's own collator.

Not TRL's SFTTrainer: TRL 1.16 always swaps in a chunked LM-head loss that is ~2x slower on CPU
and uses more memory. The model's own causal-LM loss (mean over label tokens, with
`num_items_in_batch` under gradient accumulation) is the same mathematics LLaMA-Factory uses.
"""

from __future__ import annotations

from typing import Any

from loraforge.engine.stages import StageContext

NEEDS_CHAT_TEMPLATE = True


def build_trainer(ctx: StageContext) -> Any:
    from transformers import Trainer, TrainingArguments

    data = ctx.data

    class EngineTrainer(Trainer):
        """Only change: when the data layer provides a batch sampler (length-grouped batches),
        the train DataLoader uses it instead of the Trainer's random sampler."""

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

    args = TrainingArguments(**ctx.train_kwargs)
    return EngineTrainer(
        model=ctx.model,
        args=args,
        train_dataset=data.train_dataset,
        eval_dataset=data.eval_dataset,
        data_collator=data.collator,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
