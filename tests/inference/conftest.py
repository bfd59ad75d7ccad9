"""Fixtures for the inference tests: the demo model, a random LoRA adapter on it, real workers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from inference_helpers import Worker, build_demo_model, build_random_adapter, start_worker


@pytest.fixture(scope="session")
def demo_folder() -> Path:
    return build_demo_model()


@pytest.fixture(scope="session")
def adapter_folder(demo_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_adapter(demo_folder, tmp_path_factory.mktemp("adapters") / "random-lora")


@pytest.fixture(scope="session")
def demo_copy(demo_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second folder with the same weights: a different base as far as the cache is concerned."""
    target = tmp_path_factory.mktemp("models") / "demo-copy"
    shutil.copytree(demo_folder, target)
    return target


@pytest.fixture(scope="module")
def worker(demo_folder: Path, demo_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker per test module (starting one costs seconds): aliases `demo` and `copy`,
    concurrency 1. Tests read its counters as differences."""
    started = start_worker(tmp_path_factory.mktemp("worker"), models={"demo": demo_folder, "copy": demo_copy})
    yield started
    started.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers with `workers(models=..., budget_mb=..., concurrency=...)`; all stopped after."""
    started: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        worker = start_worker(tmp_path, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
