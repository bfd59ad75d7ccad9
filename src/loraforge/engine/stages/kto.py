"""Kahneman-Tversky optimisation through TRL's KTOTrainer (LLaMA-Factory's `stage: kto`).

The data layer hands over rows of `prompt` / `completion` text already rendered through the chat
template, with a boolean `label` (desirable or not); TRL tokenises them. With a LoRA model no
reference copy of the model is loaded: the reference is the base under a frozen copy of the
adapter's initial weights (equal to the base while LoRA's B starts at zero), as in DPO.

LLaMA-Factory's keys map onto KTOConfig: `pref_beta` → beta, `kto_chosen_weight` →
desirable_weight, `kto_rejected_weight` → undesirable_weight. The method's own metrics (kl,
rewards/*, logps/*, logits/*) reach the `metric` events through `EngineCallback.on_log`.

Two changes to TRL, both to train the way LLaMA-Factory does: the mismatched answer of each
example's KL term is fixed once over the whole dataset (example i is paired with the answer of
example i-1, the first with the last), not rotated inside each batch; and with pairs fixed per
example, batches are drawn by the Trainer's seeded random sampler each epoch, not in file order,
and a batch of 1 works (TRL refuses it).
"""

from __future__ import annotations

from typing import Any

from loraforge.engine.stages import StageContext

NEEDS_CHAT_TEMPLATE = True

# LF pairs KL answers within each `datasets.map` batch of its preprocessing (1000 rows by default).
_KL_CHUNK = 1000


def _offset_kl(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
    completions = batch["completion_ids"]
    batch["KL_completion_ids"] = [completions[-1], *completions[:-1]]
    return batch


def build_trainer(ctx: StageContext) -> Any:
    from torch.utils.data import RandomSampler
    from trl import KTOConfig, KTOTrainer

    class EngineKTOTrainer(KTOTrainer):
        def __init__(self, *args: Any, batch_size: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # TRL refuses a batch of 1 because its KL pairs rotate inside a batch; ours do not, so
            # LF's batch-1 recipes (its KTO example YAML) run as LF runs them.
            if self.args.per_device_train_batch_size != batch_size:
                self.args.per_device_train_batch_size = batch_size
                self._train_batch_size = self.args.train_batch_size

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            wants_kl = self.calculate_KL
            self.calculate_KL = False  # TRL's per-batch rotation; ours is dataset-wide (see above)
            try:
                dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            finally:
                self.calculate_KL = wants_kl
            if wants_kl:
                dataset = dataset.map(_offset_kl, batched=True, batch_size=_KL_CHUNK)
            return dataset

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if dataset is None or not hasattr(dataset, "__len__"):
                return None
            return RandomSampler(dataset)  # the Trainer's seeded RNG, as for every other stage

    spec = ctx.spec
    kwargs = dict(ctx.train_kwargs)
    batch_size = int(kwargs["per_device_train_batch_size"])
    kwargs["per_device_train_batch_size"] = max(batch_size, 2)  # TRL's check (see __init__ above)
    args = KTOConfig(
        **kwargs,
        beta=float(spec.pref_beta),
        desirable_weight=float(spec.kto_chosen_weight),
        undesirable_weight=float(spec.kto_rejected_weight),
        loss_type="kto",
        max_length=spec.cutoff_len,
        dataset_num_proc=None,
        # TRL refuses any other value with its per-batch KL pairs; the sampler is ours (above).
        train_sampling_strategy="sequential",
    )
    return EngineKTOTrainer(
        model=ctx.model,
        ref_model=None,
        args=args,
        train_dataset=ctx.data.train_dataset,
        eval_dataset=ctx.data.eval_dataset,
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
        batch_size=batch_size,
    )
