"""Data for the /v1 files and fine-tuning tests: small chat rows as JSONL bytes."""

from __future__ import annotations

import json
from typing import Any


def chat_rows(n: int = 6) -> list[dict[str, Any]]:
    return [
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": f"{2 * i}."},
            ]
        }
        for i in range(n)
    ]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
