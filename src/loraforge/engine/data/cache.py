"""The tokenised-data cache: one folder per content hash of everything that changes the tokens.

The key covers the spec keys that shape the data, the tokenizer (vocabulary, special tokens, chat
template) and the bytes of every data file, so a cached copy is never stale; see `cache_key`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loraforge.engine.data.dataset import TokenizedDataset
from loraforge.engine.data.registry import DatasetAttr
from loraforge.engine.data.stats import DataStats

if TYPE_CHECKING:
    from loraforge.engine.spec import JobSpec

CACHE_VERSION = "1"  # bump when tokenised output changes for the same inputs


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    h.update(backend.to_str().encode() if backend is not None else repr(tokenizer.get_vocab()).encode())
    for attr in ("bos_token", "eos_token", "pad_token", "chat_template"):
        h.update(repr(getattr(tokenizer, attr, None)).encode())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for f in files:
        if f.is_file():
            with f.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()


def cache_key(spec: JobSpec, tokenizer: Any, train: list[DatasetAttr], evals: list[DatasetAttr]) -> str:
    """The cache folder's key: a hash of the data-shaping spec keys, the tokenizer and the files."""
    relevant = spec.model_dump(
        mode="json",
        include={
            "stage",
            "template",
            "default_system",
            "cutoff_len",
            "truncation",
            "max_samples",
            "val_size",
            "seed",
            "packing",
            "neat_packing",
            "train_on_prompt",
            "mask_history",
            "formatting",
            "columns",
            "tags",
            "ranking",
        },
    )
    payload = {
        "v": CACHE_VERSION,
        "spec": relevant,
        "tok": _tokenizer_fingerprint(tokenizer),
        "train": [(a.describe(), _file_digest(a.path)) for a in train],
        "eval": [(a.describe(), _file_digest(a.path)) for a in evals],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def save_cache(folder: Path, train: Any, evald: Any, stats: DataStats) -> None:
    """Write the tokenised data and its stats to `folder`, atomically (a rename of a temp folder)."""
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    for name, data in (("train", train), ("eval", evald)):
        if isinstance(data, TokenizedDataset):
            data.save(tmp / f"{name}.npz")
        elif data is not None:
            (tmp / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False))
    (tmp / "stats.json").write_text(json.dumps(stats.as_dict(), ensure_ascii=False, default=str))
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race; its copy is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def load_cached(folder: Path, name: str) -> Any:
    """The cached `train` or `eval` data in `folder`, or None when that part was not saved."""
    if (folder / f"{name}.npz").exists():
        return TokenizedDataset.load(folder / f"{name}.npz")
    if (folder / f"{name}.json").exists():
        return json.loads((folder / f"{name}.json").read_text())
    return None


def load_cached_stats(folder: Path) -> DataStats | None:
    """The stats of a complete cached copy in `folder` (marked hit), or None when there is none."""
    if not (folder / "stats.json").exists():
        return None
    stats = DataStats.from_dict(json.loads((folder / "stats.json").read_text()))
    stats.cache_hit = True
    return stats
