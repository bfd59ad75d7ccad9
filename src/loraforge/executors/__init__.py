"""Executors run the engine for a job: `base.Executor` (the Protocol), `local.LocalExecutor`."""
