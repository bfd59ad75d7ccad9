"""Download a hub base model into its registry version folder, in a background thread.

The version is `downloading` while this runs, then `ready` (with the detected info and size) or
`failed` (the reason in `info.error`). Files land in a staging folder next to the target and are
renamed into place only when complete, so a half-downloaded model is never served.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from pathlib import Path

from loraforge.db.models import ModelVersion
from loraforge.db.session import Database
from loraforge.services.models import files as model_files
from loraforge.services.platform.archives import folder_size

logger = logging.getLogger("loraforge.model_fetch")

# What a model needs to load and chat (no duplicate *.bin weights, no onnx / gguf exports).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.py", "*.jinja"]


def _download(hub_id: str, target: Path) -> None:
    from huggingface_hub import snapshot_download

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        snapshot_download(hub_id, local_dir=str(staging / "files"), allow_patterns=ALLOW_PATTERNS)
        shutil.rmtree(staging / "files" / ".cache", ignore_errors=True)  # hub bookkeeping, not model files
        if target.exists():
            shutil.rmtree(target)
        (staging / "files").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _run(database: Database, version_id: int, hub_id: str, target: Path) -> None:
    error: str | None = None
    try:
        _download(hub_id, target)
    except Exception as exc:  # any failure ends as a failed version the user can see
        logger.warning("downloading %s failed: %s", hub_id, exc)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    with database.session() as session:
        version = session.get(ModelVersion, version_id)
        if version is None:  # deleted meanwhile
            shutil.rmtree(target, ignore_errors=True)
            return
        if error is None:
            version.info = model_files.detect_info(target)
            version.size_bytes = folder_size(target)
            version.status = "ready"
        else:
            version.info = {**(version.info or {}), "error": error}
            version.status = "failed"
        session.commit()


def start(database: Database, *, version_id: int, hub_id: str, target: Path) -> threading.Thread:
    """Fetch `hub_id` into `target` (an id-derived folder) without blocking the request."""
    thread = threading.Thread(
        target=_run,
        args=(database, version_id, hub_id, target),
        name=f"model-fetch-{version_id}",
        daemon=True,
    )
    thread.start()
    return thread
