"""Executors run the engine for a job: `base.Executor` (the Protocol), `local.LocalExecutor`,
`ray.RayExecutor`. `make_executor(settings)` picks one from `LORAFORGE_EXECUTOR`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loraforge.executors.base import Executor
    from loraforge.settings import Settings


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "ray":
        from loraforge.executors.ray import RayExecutor  # ray is imported only when configured

        return RayExecutor(settings)
    from loraforge.executors.local import LocalExecutor

    return LocalExecutor()
