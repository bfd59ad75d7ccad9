"""Shared fixtures for engine tests: demo models built once, the LLaMA-Factory sample data.

Demo models are cached under `<repo>/.cache/demo-models/` keyed by the builder's code and corpus,
so a test session (or several sessions at once, guarded by a file lock) builds each variant once.
Set LORAFORGE_TEST_CACHE to put the cache elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _cache_root() -> Path:
    return Path(os.environ.get("LORAFORGE_TEST_CACHE", REPO / ".cache")) / "demo-models"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def lf_data_dir() -> Path:
    """LLaMA-Factory's demo datasets with their dataset_info.json (read-only, shared)."""
    path = (REPO / ".." / "shared" / "datasets" / "llamafactory").resolve()
    if not (path / "dataset_info.json").exists():
        pytest.fail(f"LLaMA-Factory sample data not found at {path}")
    return path


def _demo(arch: str, size: str) -> Path:
    from loraforge.engine.demo_model import cached_demo_model

    return cached_demo_model(_cache_root(), arch=arch, size=size)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_qwen_dir() -> Path:
    """A tiny random-init Qwen2 model folder (ChatML template, eos <|im_end|>)."""
    return _demo("qwen2", "tiny")


@pytest.fixture(scope="session")
def tiny_llama_dir() -> Path:
    """A tiny random-init Llama model folder (LLaMA-Factory `default` template, eos </s>)."""
    return _demo("llama", "tiny")


@pytest.fixture(scope="session")
def small_llama_dir() -> Path:
    """The peer benchmark's llama-small shape (hidden 256, 4 layers, FFN 688)."""
    return _demo("llama", "small")


@pytest.fixture(scope="session")
def tiny_qwen_tokenizer(tiny_qwen_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen_dir)


@pytest.fixture(scope="session")
def tiny_llama_tokenizer(tiny_llama_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)
