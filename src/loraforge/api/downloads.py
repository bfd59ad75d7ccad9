"""Streamed `.tar.gz` downloads (job checkpoints and artifacts, model versions): one response shape and
one OpenAPI description for every archive route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

ARCHIVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/gzip": {}}, "description": "A .tar.gz, streamed as it is made."}
}


def archive_response(chunks: Iterator[bytes], filename: str) -> StreamingResponse:
    """The archive as an attachment named `filename`, sent as it is produced."""
    return StreamingResponse(
        chunks,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
