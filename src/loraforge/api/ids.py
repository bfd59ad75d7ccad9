"""The one type of every row id the API reads (path, query or body) and of offsets into stored rows.

Rows are keyed by SQL BIGINTs. A larger number cannot name a row, and handed to the database driver
it overflows (a 500 from SQLite's `OverflowError`), so an id outside 1..2^63-1 is a 422 naming the
parameter before any query runs. `Annotated` constraints (not `Path()` / `Query()`) so the same type
works as a path parameter, a query parameter (wrapped in `Query(description=...)`) and a body field.
"""

from __future__ import annotations

import re
from typing import Annotated

from annotated_types import Ge, Le

MAX_ID = 2**63 - 1

Id = Annotated[int, Ge(1), Le(MAX_ID)]
# Sequence numbers and byte offsets start at 0; the same upper bound keeps them within BIGINT.
Offset = Annotated[int, Ge(0), Le(MAX_ID)]

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_id(text: str) -> int | None:
    """An id written as text (a WebSocket path, an OpenAI-style id), or None when it cannot be one.

    ASCII digits only: `str.isdigit` is also true for `³` or `٣`, which `int` then refuses or reads.
    """
    if not _ASCII_DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
