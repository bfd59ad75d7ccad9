"""Base models that are not registry rows: the built-in demo model and Hugging Face hub ids.

`demo-tiny` is virtual (listed by `/v1/models`, usable in job specs) and its folder is built on first
use; a hub id is a name the loaders fetch by, never a server path.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loraforge.settings import Settings

DEMO_MODEL = "demo-tiny"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_demo_lock = threading.Lock()


def is_hub_id(value: str) -> bool:
    """Whether `value` looks like a Hugging Face hub id (`org/name` or `name`), never a path."""
    return bool(_HUB_ID.match(value)) and ".." not in value


def ensure_demo_model(settings: Settings) -> Path:
    """`<data_dir>/models/demo-tiny`, built on first use in a subprocess (the server never imports torch)."""
    target = settings.models_dir / DEMO_MODEL
    with _demo_lock:
        if (target / "config.json").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
        try:
            subprocess.run(  # an argument list, never a shell
                [sys.executable, "-m", "loraforge", "demo-model", str(staging / "model")],
                check=True,
                capture_output=True,
                timeout=600,
            )
            (staging / "model").rename(target)
        except subprocess.CalledProcessError as exc:
            tail = exc.stderr.decode("utf-8", "replace")[-2000:] if exc.stderr else ""
            raise RuntimeError(f"building the demo model failed: {tail}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target
