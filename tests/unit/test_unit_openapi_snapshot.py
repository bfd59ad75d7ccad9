"""The committed OpenAPI document (frontend/openapi.json, the source of the typed web client) is exactly
what the server serves. A refactor that moves schemas or routes must not change it by a byte; an API
change must regenerate it (`make gen-api`) in the same commit, so the client never drifts."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

from loraforge import cli_server

SNAPSHOT = Path(__file__).resolve().parents[2] / "frontend" / "openapi.json"


def test_openapi_document_matches_the_committed_snapshot() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_server._openapi(None) == 0  # type: ignore[arg-type]
    served = out.getvalue()
    assert '"openapi"' in served and '"/api/jobs"' in served
    assert served == SNAPSHOT.read_text(), "the API changed: run `make gen-api` and commit the result"
