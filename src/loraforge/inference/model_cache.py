"""The builtin worker's loaded models: an LRU of base models under a memory budget, LoRA adapters on top.

A base is keyed by its folder (or hub id); its memory is the bytes of its parameters and buffers. Before
loading a new base, least-recently-used bases that no generation is using are unloaded until the
estimate (the size of its weight files) fits the budget. A base in use is never unloaded; when only
bases in use remain, the new one is loaded anyway (the budget is a target, not a hard cap: refusing
would turn a momentary peak into errors).

Adapters: the first adapter requested on a base wraps it into a PeftModel (`PeftModel.from_pretrained`),
later ones are added with `load_adapter(folder, adapter_name=...)`. Requests for different adapters (or
for the plain base, which runs with the adapter layers disabled) take turns: `Lease` admits any number
of generations with the same adapter at once, and switches the active adapter only when none runs.

All bookkeeping happens on the worker's event loop; loading and switching run in threads.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loraforge.inference.generation import RequestError

log = logging.getLogger("loraforge.inference.worker")

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def adapter_name(folder: str) -> str:
    """A PEFT adapter name for a folder (module-name safe: no dots or slashes)."""
    return "a" + hashlib.sha256(folder.encode()).hexdigest()[:16]


def weight_bytes_on_disk(folder: str) -> int:
    path = Path(folder)
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def adapter_base(folder: str) -> str | None:
    """The base an adapter folder was trained on (adapter_config.json), or None if it is no adapter."""
    config = Path(folder) / "adapter_config.json"
    if not config.is_file():
        return None
    value = json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")
    return str(value) if value else ""


@dataclass
class LoadedBase:
    """A loaded base model; `tokenizer_for(adapter)` is the tokenizer a request renders with."""

    key: str
    model: Any
    tokenizer: Any
    bytes: int
    loaded_at: float
    last_used: float
    adapters: dict[str, str] = field(default_factory=dict)  # adapter folder -> PEFT adapter name
    # Fine-tuned outputs carry the tokenizer (and chat template) they were trained with: it wins.
    adapter_tokenizers: dict[str, Any] = field(default_factory=dict)
    peft: bool = False
    active: str | None = None  # adapter folder the model runs with now; None = plain base
    running: int = 0  # generations using this base right now
    turn: asyncio.Condition = field(default_factory=asyncio.Condition)

    def tokenizer_for(self, adapter: str | None) -> Any:
        if adapter is not None and adapter in self.adapter_tokenizers:
            return self.adapter_tokenizers[adapter]
        return self.tokenizer


class ModelCache:
    def __init__(self, *, budget_bytes: int, device: str | None = None) -> None:
        self.budget_bytes = budget_bytes
        self.device = device
        self.bases: dict[str, LoadedBase] = {}
        self._loading: dict[str, asyncio.Lock] = {}
        self._cache_lock = asyncio.Lock()
        self.loads = 0
        self.evictions = 0

    # -- loading -----------------------------------------------------------------------------

    def _device(self) -> str:
        if self.device is None:
            import torch

            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _load_blocking(self, key: str) -> tuple[Any, Any, int]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self._device()
        # float32 on CPU (half precision is slow or unsupported there); the checkpoint's dtype on GPU.
        dtype: Any = "auto" if device == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(key)
        model: Any = AutoModelForCausalLM.from_pretrained(key, dtype=dtype)
        model.to(device)
        model.eval()
        size = sum(p.numel() * p.element_size() for p in model.parameters())
        size += sum(b.numel() * b.element_size() for b in model.buffers())
        return model, tokenizer, int(size)

    def _evict_for(self, needed: int, keep: str) -> None:
        """Unload idle bases, least recently used first, until `needed` more bytes fit."""
        while self.used_bytes() + needed > self.budget_bytes:
            idle = [b for b in self.bases.values() if b.running == 0 and b.key != keep]
            if not idle:
                return
            victim = min(idle, key=lambda b: b.last_used)
            log.info("unloading %s (least recently used) to stay within the memory budget", victim.key)
            self._drop(victim.key)
            self.evictions += 1

    def _drop(self, key: str) -> None:
        entry = self.bases.pop(key, None)
        if entry is None:
            return
        entry.model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is always there in the worker
            pass

    def used_bytes(self) -> int:
        return sum(b.bytes for b in self.bases.values())

    async def base(self, key: str) -> LoadedBase:
        """The loaded base for `key`, loading it (once, even for concurrent callers) when needed."""
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self.bases.get(key)
            if entry is not None:
                entry.last_used = time.monotonic()
                return entry
            if not Path(key).is_dir() and "/" not in key:
                raise RequestError(f"model folder {key!r} not found", status=404)
            async with self._cache_lock:
                self._evict_for(weight_bytes_on_disk(key), keep=key)
            try:
                model, tokenizer, size = await asyncio.to_thread(self._load_blocking, key)
            except (OSError, ValueError) as exc:
                raise RequestError(f"cannot load model {key!r}: {exc}", status=404) from exc
            async with self._cache_lock:
                # The estimate may have been low: make room for the measured size too.
                self._evict_for(size, keep=key)
                now = time.monotonic()
                entry = LoadedBase(key, model, tokenizer, size, loaded_at=now, last_used=now)
                self.bases[key] = entry
                self.loads += 1
            return entry

    def _add_adapter_blocking(self, entry: LoadedBase, folder: str) -> None:
        from peft import PeftModel
        from transformers import AutoTokenizer

        if (Path(folder) / "tokenizer_config.json").is_file():
            entry.adapter_tokenizers[folder] = AutoTokenizer.from_pretrained(folder)

        name = adapter_name(folder)
        if not entry.peft:
            entry.model = PeftModel.from_pretrained(entry.model, folder, adapter_name=name)
            entry.peft = True
        else:
            entry.model.load_adapter(folder, adapter_name=name)
        entry.model.eval()
        entry.adapters[folder] = name
        # Which adapter PEFT now has active differs between from_pretrained and load_adapter: mark it
        # unknown so the next lease activates what it needs.
        entry.active = ""

    async def ensure_adapter(self, entry: LoadedBase, folder: str) -> None:
        """Load the adapter onto the base once (waits until no generation runs on the base)."""
        if folder in entry.adapters:
            return
        if adapter_base(folder) is None:
            raise RequestError(f"{folder!r} is not a LoRA adapter folder", status=404)
        async with entry.turn:
            await entry.turn.wait_for(lambda: entry.running == 0)
            if folder in entry.adapters:
                return
            try:
                await asyncio.to_thread(self._add_adapter_blocking, entry, folder)
            except (OSError, ValueError, KeyError) as exc:
                raise RequestError(f"cannot load adapter {folder!r}: {exc}", status=404) from exc

    # -- using -------------------------------------------------------------------------------

    @asynccontextmanager
    async def lease(self, key: str, adapter: str | None) -> AsyncIterator[LoadedBase]:
        """The base with `adapter` active (None: plain base) for the duration of one generation."""
        entry = await self.base(key)
        if adapter is not None:
            await self.ensure_adapter(entry, adapter)
        async with entry.turn:
            await entry.turn.wait_for(lambda: entry.running == 0 or entry.active == adapter)
            if entry.active != adapter or not entry.peft:
                self._activate(entry, adapter)
            entry.running += 1
        try:
            yield entry
        finally:
            entry.last_used = time.monotonic()
            async with entry.turn:
                entry.running -= 1
                entry.turn.notify_all()

    def _activate(self, entry: LoadedBase, adapter: str | None) -> None:
        if not entry.peft:
            entry.active = None
            return
        if adapter is None:
            entry.model.base_model.disable_adapter_layers()
        else:
            entry.model.base_model.enable_adapter_layers()
            entry.model.set_adapter(entry.adapters[adapter])
        entry.active = adapter

    async def unload(self, key: str | None = None, adapter: str | None = None) -> list[str]:
        """Unload one adapter, one base (when idle), or every idle base; returns what went."""
        removed: list[str] = []
        targets = [key] if key is not None else list(self.bases)
        for target in targets:
            entry = self.bases.get(target)
            if entry is None:
                continue
            async with entry.turn:
                if entry.running:
                    continue
                if adapter is not None:
                    name = entry.adapters.pop(adapter, None)
                    entry.adapter_tokenizers.pop(adapter, None)
                    if name is not None:
                        await asyncio.to_thread(self._delete_adapter_blocking, entry, name)
                        removed.append(adapter)
                    continue
            async with self._cache_lock:
                self._drop(target)
            removed.append(target)
        return removed

    @staticmethod
    def _delete_adapter_blocking(entry: LoadedBase, name: str) -> None:
        if entry.adapters:
            entry.model.delete_adapter(name)
            entry.active = ""  # PEFT picked some other adapter as active: re-activate on next use
        else:
            # The last adapter: take the LoRA layers out again so the base runs as it was loaded.
            entry.model = entry.model.unload()
            entry.peft = False
            entry.active = None

    def stats(self) -> list[dict[str, Any]]:
        return [
            {
                "base": b.key,
                "bytes": b.bytes,
                "adapters": sorted(b.adapters),
                "active_generations": b.running,
                "idle_seconds": round(time.monotonic() - b.last_used, 3),
            }
            for b in sorted(self.bases.values(), key=lambda b: b.last_used, reverse=True)
        ]
