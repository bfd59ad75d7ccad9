"""prepare_data(spec, tokenizer): files -> examples -> tokenised train/eval datasets + collator + stats.

What it reports is in `stats`; the tokenised-data cache it reads and fills is `cache`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loraforge.engine.chat_templates import TemplateError, get_template
from loraforge.engine.data.cache import cache_key, load_cached, load_cached_stats, save_cache
from loraforge.engine.data.collators import NeatPackingCollator, PaddedCollator
from loraforge.engine.data.dataset import LengthGroupedBatchSampler, TokenizedDataset
from loraforge.engine.data.encode import encode_pretrain, encode_supervised, pack_rows, render_preference
from loraforge.engine.data.formats import Example, RowError, convert_row, detect_formatting, detect_kind
from loraforge.engine.data.kto import render_unpaired
from loraforge.engine.data.readers import read_rows
from loraforge.engine.data.registry import DatasetAttr, load_dataset_info, resolve_dataset
from loraforge.engine.data.stats import DataError, DatasetStats, DataStats, NoValidRowsError

if TYPE_CHECKING:
    from loraforge.engine.spec import JobSpec


@dataclass
class PreparedData:
    """What the runtime needs to train: datasets, collator, stats and how batches are drawn."""

    train_dataset: Any  # TokenizedDataset, or datasets.Dataset of prompt/chosen/rejected for dpo
    eval_dataset: Any | None
    collator: Any | None  # None for dpo (TRL collates itself)
    stats: DataStats
    template_name: str
    group_by_length: bool = False
    seed: int = 42

    def batch_sampler(self, batch_size: int, *, drop_last: bool = False) -> LengthGroupedBatchSampler | None:
        """A length-grouped batch sampler when the spec asks for one (unpacked sft/pt), else None."""
        if not self.group_by_length or not isinstance(self.train_dataset, TokenizedDataset):
            return None
        return LengthGroupedBatchSampler(
            self.train_dataset.lengths, batch_size, seed=self.seed, drop_last=drop_last
        )


# ---- loading -------------------------------------------------------------------------------------
def _attrs(spec: JobSpec, names: list[str], base_dir: Path | None) -> list[DatasetAttr]:
    dataset_dir = spec.dataset_dir_path(base_dir)
    info = load_dataset_info(dataset_dir)
    ranking = spec.ranking if spec.ranking is not None else (spec.stage == "dpo")
    return [
        resolve_dataset(
            name,
            dataset_dir,
            info=info,
            formatting=spec.formatting,
            columns=spec.columns,
            tags=spec.tags,
            ranking=ranking,
        )
        for name in names
    ]


def load_examples(
    attrs: list[DatasetAttr], *, max_samples: int | None
) -> tuple[list[Example], list[DatasetStats]]:
    """Read and normalise each dataset; bad rows are skipped and recorded with their row number."""
    examples: list[Example] = []
    all_stats: list[DatasetStats] = []
    for attr in attrs:
        rows = read_rows(attr.path)
        if max_samples is not None:  # LF: the first max_samples rows of each dataset
            rows = rows[:max_samples]
        if attr.formatting is None and rows:
            try:
                attr.formatting = detect_formatting(rows[0], attr)
            except RowError as exc:
                raise DataError(f"dataset {attr.name!r}: {exc}") from None
        stats = DatasetStats(
            attr.name, str(attr.path), detect_kind(attr, rows[0] if rows else None), rows_read=len(rows)
        )
        for i, row in enumerate(rows):
            try:
                ex = convert_row(row, attr)
            except RowError as exc:
                stats.note(i, exc.field, exc.message)
                continue
            ex["_src"] = (attr.name, i)
            examples.append(ex)
            stats.rows_kept += 1
        all_stats.append(stats)
    return examples, all_stats


def split_validation(
    examples: list[Example], val_size: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Deterministic split: a fraction (< 1, rounded up) or a count (≥ 1) of rows goes to validation."""
    n = len(examples)
    n_val = int(val_size) if val_size >= 1 else math.ceil(val_size * n)
    n_val = min(n_val, max(n - 1, 0))
    if n_val <= 0:
        return examples, []
    perm = np.random.default_rng(seed).permutation(n)
    val_idx = set(perm[:n_val].tolist())
    train = [e for i, e in enumerate(examples) if i not in val_idx]
    val = [examples[i] for i in sorted(val_idx)]
    return train, val


# ---- tokenising ----------------------------------------------------------------------------------
def _tokenize(
    examples: list[Example], spec: JobSpec, tokenizer: Any, stats: DataStats, per_ds: dict[str, DatasetStats]
) -> TokenizedDataset | list[dict[str, Any]]:
    template = get_template(spec.template, tokenizer, spec.default_system) if spec.stage != "pt" else None
    if spec.stage == "pt":
        (pt_ids, pt_labels, pt_pos), dropped = encode_pretrain(
            examples,
            tokenizer,
            cutoff_len=spec.cutoff_len,
            packing=bool(spec.packing),
            neat_packing=spec.neat_packing,
        )
        stats.dropped_tokens += dropped
        return TokenizedDataset.from_rows(pt_ids, pt_labels, pt_pos)

    assert template is not None
    if spec.stage == "dpo":
        rows: list[dict[str, str]] = []
        for ex in examples:
            try:
                rows.append(render_preference(ex, tokenizer, template))
            except (ValueError, TemplateError) as exc:
                _skip(ex, per_ds, exc)
        return rows
    if spec.stage == "kto":
        kto_rows: list[dict[str, Any]] = []
        for ex in examples:
            try:
                kto_rows.append(render_unpaired(ex, tokenizer, template))
            except (ValueError, TemplateError) as exc:
                _skip(ex, per_ds, exc)
        return kto_rows

    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    for ex in examples:
        try:
            encoded = encode_supervised(
                ex,
                tokenizer,
                template,
                cutoff_len=spec.cutoff_len,
                train_on_prompt=spec.train_on_prompt,
                mask_history=spec.mask_history,
                truncation=spec.truncation,
            )
        except (ValueError, TemplateError) as exc:
            _skip(ex, per_ds, exc)
            continue
        if encoded is None or not encoded[0]:
            stats.dropped_examples += 1
            continue
        ids, labels = encoded
        if len(ids) >= spec.cutoff_len:
            stats.truncated_examples += 1
        rows_ids.append(ids)
        rows_labels.append(labels)
    if spec.packing:
        packed_ids, packed_labels, pos = pack_rows(
            rows_ids, rows_labels, spec.cutoff_len, neat=spec.neat_packing
        )
        return TokenizedDataset.from_rows(packed_ids, packed_labels, pos)
    return TokenizedDataset.from_rows(rows_ids, rows_labels)


def _skip(ex: Example, per_ds: dict[str, DatasetStats], exc: Exception) -> None:
    name, row = ex["_src"]
    st = per_ds[name]
    st.rows_kept -= 1
    msg = str(exc)
    fld, _, rest = msg.partition(": ")
    if rest and " " not in fld:
        st.note(row, fld, rest)
    else:
        st.note(row, "<conversation>", msg)


# ---- the entry point -----------------------------------------------------------------------------
def prepare_data(
    spec: JobSpec,
    tokenizer: Any,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> PreparedData:
    """Load, normalise, split, tokenise (once, cached by content hash) and pick a collator.

    cache_dir (or spec.data_cache_dir) enables the tokenised-data cache; base_dir resolves a
    relative dataset_dir (e.g. the spec file's folder). Raises NoValidRowsError when nothing usable
    remains, DataError for data that does not fit the stage.
    """
    base = Path(base_dir) if base_dir is not None else None
    train_attrs = _attrs(spec, spec.dataset or [], base)
    eval_names = list(spec.eval_dataset or []) + ([spec.validation_file] if spec.validation_file else [])
    eval_attrs = _attrs(spec, eval_names, base)

    cache_root = cache_dir or spec.data_cache_dir
    folder: Path | None = None
    key = ""
    if cache_root is not None:
        key = cache_key(spec, tokenizer, train_attrs, eval_attrs)
        folder = Path(cache_root) / f"data-{key}"
        cached = load_cached_stats(folder)
        if cached is not None:
            return _finish(spec, tokenizer, load_cached(folder, "train"), load_cached(folder, "eval"), cached)

    stats = DataStats(cache_key=key)
    train_examples, stats.datasets = load_examples(train_attrs, max_samples=spec.max_samples)
    eval_examples: list[Example] = []
    if eval_attrs:
        eval_examples, stats.eval_datasets = load_examples(eval_attrs, max_samples=spec.max_samples)
    _check_stage(spec, train_attrs)
    if not train_examples:
        raise NoValidRowsError(stats)
    if spec.val_size:
        train_examples, eval_examples = split_validation(train_examples, spec.val_size, spec.seed)

    per_ds = {d.name: d for d in stats.datasets + stats.eval_datasets}
    train = _tokenize(train_examples, spec, tokenizer, stats, per_ds)
    if len(train) == 0:
        raise NoValidRowsError(stats)
    evald = _tokenize(eval_examples, spec, tokenizer, DataStats(), per_ds) if eval_examples else None
    stats.train_examples = (
        stats.rows_kept - stats.dropped_examples - (len(eval_examples) if spec.val_size else 0)
    )
    stats.eval_examples = len(eval_examples)
    if folder is not None:
        save_cache(folder, train, evald, stats)
    return _finish(spec, tokenizer, train, evald, stats)


def _check_stage(spec: JobSpec, attrs: list[DatasetAttr]) -> None:
    if spec.stage == "kto":
        unlabelled = [a.name for a in attrs if a.ranking or not a.column("kto_tag")]
        if unlabelled:
            raise DataError(
                f"stage: kto needs a KTO dataset (one answer per example and a true/false `label`, "
                f"columns.kto_tag), but {', '.join(unlabelled)} is not one"
            )
    if spec.stage == "dpo":
        flat = [a.name for a in attrs if not a.ranking]
        if flat:
            raise DataError(
                f"stage: dpo needs preference data (chosen/rejected, `ranking: true`), but {', '.join(flat)} "
                "is not a preference dataset"
            )


def _finish(spec: JobSpec, tokenizer: Any, train: Any, evald: Any, stats: DataStats) -> PreparedData:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator: Any
    if spec.stage in ("dpo", "kto"):  # TRL tokenises and collates these rows itself
        from datasets import Dataset

        train = Dataset.from_list(train)
        evald = Dataset.from_list(evald) if evald else None
        collator = None
        stats.train_rows = len(train)
        stats.eval_rows = len(evald) if evald is not None else 0
    else:
        collator = (
            NeatPackingCollator(pad_id, spec.pad_to_multiple_of)
            if spec.neat_packing
            else PaddedCollator(pad_id, spec.pad_to_multiple_of)
        )
        stats.train_rows = len(train)
        stats.eval_rows = len(evald) if evald is not None else 0
        stats.train_tokens = train.num_tokens
        stats.train_label_tokens = train.num_label_tokens
    return PreparedData(
        train_dataset=train,
        eval_dataset=evald,
        collator=collator,
        stats=stats,
        template_name=spec.template,
        group_by_length=spec.group_by_length and not spec.packing,
        seed=spec.seed,
    )
