"""Where dataset files live. Every path is built from database IDs, never from user-supplied names.

<data_dir>/datasets/<dataset_id>/versions/<version_id>/
    original<.ext>     the uploaded file, byte for byte (its suffix is one of SUPPORTED_SUFFIXES)
    normalized.jsonl   one example per line: {"row", "prompt", "response", "system", "tools", "label"}
    index.bin          little-endian uint64 byte offsets of each line of normalized.jsonl, plus the end
    stats.json         statistics computed at ingest (stats-<tokenizer>.json: cached per tokenizer)
<data_dir>/datasets/.staging/<random>/   versions being built (renamed into place when complete)
<data_dir>/uploads/<upload_id>/data      resumable upload sessions (sparse file, written by offset)
"""

from __future__ import annotations

from pathlib import Path

NORMALIZED = "normalized.jsonl"
INDEX = "index.bin"
STATS = "stats.json"
ORIGINAL = "original"


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        return data_dir
    from loraforge.settings import get_settings

    return get_settings().data_dir


def datasets_root(data_dir: Path | None = None) -> Path:
    return _data_dir(data_dir) / "datasets"


def staging_root(data_dir: Path | None = None) -> Path:
    return datasets_root(data_dir) / ".staging"


def uploads_root(data_dir: Path | None = None) -> Path:
    return _data_dir(data_dir) / "uploads"


def dataset_dir(dataset_id: int, data_dir: Path | None = None) -> Path:
    return datasets_root(data_dir) / str(int(dataset_id))


def version_dir(dataset_id: int, version_id: int, data_dir: Path | None = None) -> Path:
    return dataset_dir(dataset_id, data_dir) / "versions" / str(int(version_id))


def normalized_path(dataset_id: int, version_id: int, *, data_dir: Path | None = None) -> Path:
    """The normalized JSONL of a dataset version (what training reads).

    Each line is one valid example: `{"row": <1-based source row>, "prompt": [{"role", "content"}, ...],
    "response": [...], "system": str, "tools": str, "label": bool | null}` and, after a preprocess with
    `split`, `"split": "train" | "validation"`. `data_dir` defaults to the server's settings.
    """
    return version_dir(dataset_id, version_id, data_dir) / NORMALIZED


def original_path(folder: Path) -> Path | None:
    """The original upload inside a version folder (its name carries the file type's suffix)."""
    for child in folder.iterdir():
        if child.name.startswith(ORIGINAL):
            return child
    return None
