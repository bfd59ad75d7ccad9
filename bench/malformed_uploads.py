"""Malformed uploads against a real server. Prints one JSON object.

The seeded corpus of `corpus.py` (300+ broken JSON, JSONL, CSV, TSV, Parquet and TXT files of every
row shape) is uploaded, file by file, through the one-shot dataset upload (`POST /api/datasets`,
multipart) and the OpenAI fine-tune path (`POST /v1/files`, purpose fine-tune), to a real
`loraforge serve` on loopback (temporary data directory, SQLite, row limit `corpus_files.ROW_LIMIT`).
Figures: responses per status code, the 5xx count (must be 0), and for every row-level problem
whether the answer names the row (and the field); file-level problems must get a 4xx with a code.

Usage: .venv/bin/python bench/malformed_uploads.py [--seed 13] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import build
from corpus_check import DATASETS, V1_FILES, Verdict, judge, summary
from corpus_files import ROW_LIMIT, Case
from live_server import LiveServer


def _post(server: LiveServer, headers: dict[str, str], case: Case, endpoint: str) -> tuple[int, Any, str]:
    """(status, JSON body or None, text); a dropped connection is status 0 (and is a problem)."""
    try:
        response = _send(server, headers, case, endpoint)
    except httpx.TransportError as exc:
        alive = server.process is not None and server.process.poll() is None
        return 0, None, f"connection error: {exc!r}; server {'alive' if alive else 'DEAD'}"
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body, response.text


def _send(server: LiveServer, headers: dict[str, str], case: Case, endpoint: str) -> httpx.Response:
    if endpoint == DATASETS:
        response = server.http.post(
            "/api/datasets", files={"file": (case.filename, case.content)}, data=case.form, headers=headers
        )
    else:
        response = server.http.post(
            "/v1/files",
            files={"file": (case.filename, case.content)},
            data={"purpose": "fine-tune"},
            headers=headers,
        )
    return response


def _examples(verdicts: list[Verdict]) -> dict[str, str]:
    """One dataset-upload error message per category (the first), to show what users read."""
    found: dict[str, str] = {}
    for v in verdicts:
        if v.endpoint == DATASETS and 400 <= v.status < 500 and v.category not in found:
            found[v.category] = f"{v.case}: {v.status} {v.code}: {v.message}"
    return dict(sorted(found.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, default=0, help="only the first N cases (0: all)")
    parser.add_argument("--verbose", action="store_true", help="also list every answer")
    args = parser.parse_args()
    cases = build(args.seed)
    if args.limit:
        cases = cases[: args.limit]
    verdicts: list[Verdict] = []
    slowest: list[tuple[float, str]] = []
    env = {"LORAFORGE_DATASET_MAX_ROW_BYTES": str(ROW_LIMIT)}
    t0 = time.monotonic()
    with LiveServer(env=env) as server:
        headers = server.user("uploader")
        paths = (str(server.data_dir), str(server.data_dir.resolve()))
        for case in cases:
            for endpoint in (DATASETS, V1_FILES):
                started = time.monotonic()
                status, body, raw = _post(server, headers, case, endpoint)
                slowest.append((time.monotonic() - started, f"{endpoint} {case.name}"))
                verdicts.append(judge(case, endpoint, status, body, raw, server_paths=paths))
                if status == 0:
                    print(f"{endpoint} {case.name}: {raw}", file=sys.stderr)
            if server.process is not None and server.process.poll() is not None:
                print(f"the server died on {case.name}", file=sys.stderr)
                break
        try:
            healthy = server.http.get("/api/health").status_code == 200
        except httpx.TransportError:
            healthy = False
        log = (server.data_dir / "server.log").read_text(errors="replace")
    slowest.sort(reverse=True)
    result: dict[str, Any] = {
        "bench": "malformed_uploads",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seed": args.seed,
        "files": len(cases),
        "bytes": sum(len(c.content) for c in cases),
        "by_category": dict(sorted(Counter(c.category for c in cases).items())),
        "by_file_type": dict(sorted(Counter(c.filename.rsplit(".", 1)[-1] for c in cases).items())),
        "row_limit_bytes": ROW_LIMIT,
        **summary(verdicts),
        "server_healthy_after": healthy,
        "server_log_tracebacks": log.count("Traceback"),
        "example_errors": _examples(verdicts),
        "slowest_requests_s": [[round(s, 3), name] for s, name in slowest[:5]],
        "wall_s": round(time.monotonic() - t0, 1),
    }
    if args.verbose:
        result["answers"] = [f"{v.endpoint} {v.case} {v.status} {v.code}: {v.message}" for v in verdicts]
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0 if result["responses_5xx"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
