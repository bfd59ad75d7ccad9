"""Helpers for the dataset API tests: uploads and small files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
from api_helpers import Account
from fastapi.testclient import TestClient

LLAMAFACTORY = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "llamafactory"
if not LLAMAFACTORY.is_dir():  # the checkout may live elsewhere; the shared folder does not
    LLAMAFACTORY = Path("/work/shared/datasets/llamafactory")

EXPECTED_FORMATS = {
    "alpaca_en_demo.json": "alpaca",
    "alpaca_zh_demo.json": "alpaca",
    "identity.json": "alpaca",
    "c4_demo.jsonl": "text",
    "wiki_demo.txt": "text",
    "dpo_en_demo.json": "preference",
    "dpo_zh_demo.json": "preference",
    "glaive_toolcall_en_demo.json": "sharegpt",
    "kto_en_demo.json": "kto",
}

ALPACA_ROWS = [
    {"instruction": f"Question number {i}?", "input": "", "output": f"Answer number {i}."}
    for i in range(1, 31)
]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def upload(
    client: TestClient,
    account: Account,
    filename: str,
    content: bytes,
    **form: str,
) -> httpx.Response:
    return client.post(
        "/api/datasets", files={"file": (filename, content)}, data=form, headers=account.headers
    )


def create(
    client: TestClient, account: Account, filename: str, content: bytes, **form: str
) -> dict[str, Any]:
    response = upload(client, account, filename, content, **form)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_files(data_dir: Path) -> list[Path]:
    """Every file under the datasets and uploads folders (staging included)."""
    found: list[Path] = []
    for root in (data_dir / "datasets", data_dir / "uploads"):
        if root.exists():
            found += [p for p in root.rglob("*") if p.is_file()]
    return found
