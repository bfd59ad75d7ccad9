"""Support for the Schemathesis fuzz test: the checks, one operation's bounded run, readable findings.

The test (test_api_fuzz_schemathesis.py) serves the real app under uvicorn on 127.0.0.1; requests go
over real HTTP, so what is fuzzed is what a client can send, encoding included. A run records each
distinct kind of failure once (with a curl line, and for a 5xx the exception the server logged)
instead of stopping at the first, so one test run shows everything that is wrong with an operation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

# The checks every response goes through. Not a server error: 0 responses of 5xx. Status code,
# content type and body conform to what the document declares for that status. Negative data
# rejection: input that violates the schema is refused with a 4xx. Ignored auth: an operation that
# declares a credential refuses a request without one.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]

# A refusal of schema-violating input may also be 413: a string longer than its maxLength can make the
# body larger than the server's body limit (64 KiB in the tests), which is checked before the schema.
REJECTION_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

_VIOLATION = re.compile(r"violates `([A-Za-z]+)`")
_TYPE_KEYWORDS = {"type", "anyOf", "oneOf"}


def only_type_changes(message: str) -> bool:
    """Whether a schema-violating request that was accepted only gave values of another JSON type.

    Request models validate in pydantic's lax mode, which converts a value of another type when it
    can (`true` -> 1.0, `0` -> 1970-01-01T00:00:00Z, `"7"` -> 7) and refuses it with a 422 when it
    cannot; so an accepted type change was converted, by design. Anything else accepted (a string over
    its maxLength, a number out of range, an unknown field, a missing required one) is a finding.
    """
    keywords = set(_VIOLATION.findall(message))
    return bool(keywords) and keywords <= _TYPE_KEYWORDS


REQUEST_TIMEOUT_S = 30.0  # a request that takes longer is a finding (unbounded work), not a wait


def schema_config(base_url: str, token: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "base-url": base_url,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {
                # The credential is ours; generated ones would only test the 401 path over and over.
                "with-security-parameters": False,
                # FastAPI ignores unknown query parameters by design (none of ours is strict): the
                # document does not say `additionalProperties: false` for the query, so extra ones prove
                # nothing either way.
                "allow-extra-parameters": False,
            },
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTION_STATUSES}},
        }
    )


def hypothesis_run_settings(examples: int) -> hypothesis_settings:
    """A fixed number of examples per generation mode, the same ones on every run (derandomized), no
    example database, and no shrinking: failures are recorded, not raised, so a run is bounded."""
    return hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


class ServerErrorLog(logging.Handler):
    """Keeps the last exception the server logged (the app logs every unhandled one with its traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.last: logging.LogRecord | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = record

    def take_summary(self) -> str:
        record, self.last = self.last, None
        if record is None or not record.exc_info or record.exc_info[1] is None:
            return ""
        exc = record.exc_info[1]
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if f"{os.sep}loraforge{os.sep}" in f.filename] or frames
        where = (
            f" at {ours[-1].filename.rsplit(os.sep + 'src' + os.sep, 1)[-1]}:{ours[-1].lineno}"
            if ours
            else ""
        )
        return f"{type(exc).__name__}: {str(exc)[:200]}{where}"


@contextmanager
def server_error_log() -> Iterator[ServerErrorLog]:
    handler = ServerErrorLog()
    logger = logging.getLogger("loraforge")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@dataclass
class Finding:
    kind: str  # e.g. "ST101 Server error"
    status: int | None
    mode: str
    curl: str
    detail: str
    count: int = 1

    def render(self) -> str:
        return (
            f"- {self.kind} [{self.status}] ({self.mode}, x{self.count})\n"
            f"    {self.curl[:600]}\n    {self.detail[:600]}"
        )


@dataclass
class OperationRun:
    """Runs one operation's examples and records distinct findings (first example of each kind)."""

    operation: Any
    session: requests.Session
    log: ServerErrorLog
    allowed_5xx: dict[int, str] = field(default_factory=dict)
    undocumented_ok: dict[int, str] = field(default_factory=dict)
    findings: dict[tuple[str, int | None], Finding] = field(default_factory=dict)
    requests_sent: int = 0

    def _record(self, kind: str, status: int | None, mode: str, case: Any, detail: str) -> None:
        key = (kind, status)
        if key in self.findings:
            self.findings[key].count += 1
            return
        try:
            curl = case.as_curl_command(headers={"Authorization": "Bearer <researcher token>"})
        except Exception:  # a case that cannot be printed as curl is still a finding
            curl = repr(case)[:600]
        self.findings[key] = Finding(kind, status, mode, curl, detail)

    def _tolerated(self, failure: BaseException, status: int) -> bool:
        name = type(failure).__name__
        if name in ("ServerError", "UndefinedStatusCode") and status in self.allowed_5xx:
            return True
        if name == "AcceptedNegativeData":
            return only_type_changes(str(getattr(failure, "message", failure)))
        return name == "UndefinedStatusCode" and status in self.undocumented_ok

    def run_case(self, case: Any, mode: str, prepare: Any = None) -> None:
        if prepare is not None:
            prepare(case)
        self.requests_sent += 1
        try:
            response = case.call(session=self.session, timeout=REQUEST_TIMEOUT_S)
        except requests.RequestException as exc:
            self._record("no answer", None, mode, case, repr(exc))
            return
        server_log = self.log.take_summary() if response.status_code >= 500 else ""
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures = list(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else [exc]
            status = response.status_code
            for failure in failures:
                if self._tolerated(failure, status):
                    continue
                kind = f"{getattr(failure, 'code', '')} {getattr(failure, 'title', type(failure).__name__)}"
                detail = server_log or f"{getattr(failure, 'message', failure)} :: {response.text[:300]}"
                self._record(kind.strip(), status, mode, case, detail)

    def run(self, examples: int, prepare: Any = None) -> None:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            # Unsatisfiable: nothing to negate (no parameters, or only an optional cookie).
            with contextlib.suppress(Unsatisfiable):
                self._run_mode(examples, mode, prepare)

    def _run_mode(self, examples: int, mode: Any, prepare: Any) -> None:
        @hypothesis_run_settings(examples)
        @given(case=self.operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            self.run_case(case, mode.value, prepare)

        one()

    def report(self) -> str:
        # 5xx first, each once: a 500 is also an undocumented status, which adds nothing.
        server_errors = {status for (kind, status) in self.findings if kind.startswith("ST101")}
        shown = [
            f
            for (kind, status), f in self.findings.items()
            if not (kind.startswith("ST103") and status in server_errors)
        ]
        shown.sort(key=lambda f: (not f.kind.startswith("ST101"), f.kind))
        return "\n".join(f.render() for f in shown)
