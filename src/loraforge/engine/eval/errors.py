"""How an evaluation ends when its input is bad: one `error` event with a code, then `failed`.

Shared by `loraforge eval` (the CLI) and the platform's evaluation jobs (`eval/job.py`), so a bad
test set reads the same in a terminal and in a job's events. Only expected failures (input, files,
model, a resume into another evaluation's folder) are mapped; anything else is a bug and goes to
the engine's generic classifier with its traceback.
"""

from __future__ import annotations

import sys

from loraforge.engine.events import EventWriter
from loraforge.engine.failures import EngineError


class EvalCancelled(Exception):
    """SIGTERM reached a batch boundary: the results so far are stored, the run stops here."""


class ProviderFailedError(EngineError):
    """Every request to the provider model failed (a wrong key or URL, the endpoint down)."""

    code = "provider_failed"


def eval_failure(exc: BaseException) -> tuple[str, str] | None:
    """(error code, message) for an expected failure, None for anything else."""
    from loraforge.engine.data.readers import DataFileError
    from loraforge.engine.data.registry import DatasetNotFoundError
    from loraforge.engine.data.stats import DataError
    from loraforge.engine.eval.results import ResumeMismatchError
    from loraforge.engine.eval.testset import QuestionError

    if isinstance(exc, EngineError):
        return exc.code, exc.message + (f"\n{exc.suggestion}" if exc.suggestion else "")
    # ValueError covers the chat template's TemplateError, a row the template refuses and spec errors.
    expected = (
        DataError,
        DataFileError,
        DatasetNotFoundError,
        QuestionError,
        ResumeMismatchError,
        ValueError,
    )
    if isinstance(exc, expected):
        return "invalid_input", str(exc)
    return None


def fail(writer: EventWriter, code: str, message: str) -> int:
    """Emit the error and the final `failed` status; the exit status of a failed evaluation (2)."""
    writer.emit("error", code=code, message=message)
    writer.status("failed", message.splitlines()[0] if message else None)
    print(f"error: {message}", file=sys.stderr)
    return 2
