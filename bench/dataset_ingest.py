"""Dataset ingest at scale: generate a JSONL of chat rows (default 1 GB), then time
sha256 + ingest (sniff/encoding check, validate every row, normalize, row-offset index, statistics)
in a child process with its peak RSS, then preview-page latency at random pages. Prints one JSON object.

Usage: .venv/bin/python bench/dataset_ingest.py [--size-mb 1024] [--pages 200] [--keep DIR]
Goals: ingest ≤ 60 s and ≤ 300 MB peak RSS on the 2-core machine; preview p95 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [
    "model",
    "data",
    "train",
    "token",
    "layer",
    "weight",
    "gradient",
    "answer",
    "question",
    "forge",
    "adapter",
    "rank",
    "alpha",
    "batch",
    "epoch",
    "loss",
    "learning",
    "rate",
    "schedule",
    "warmup",
    "evaluation",
    "sample",
    "prompt",
    "reply",
    "assistant",
]


def generate(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Chat rows in OpenAI messages form (system + 1-3 user/assistant pairs), ~1 KB each."""
    rng = random.Random(seed)
    rows = 0
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < size_bytes:
            turns = [{"role": "system", "content": "You are a helpful assistant."}]
            for _ in range(rng.randint(1, 3)):
                turns.append({"role": "user", "content": " ".join(rng.choices(WORDS, k=rng.randint(8, 40)))})
                turns.append(
                    {"role": "assistant", "content": " ".join(rng.choices(WORDS, k=rng.randint(20, 120)))}
                )
            line = json.dumps({"messages": turns}) + "\n"
            f.write(line)
            written += len(line)
            rows += 1
    return rows


def ingest_child(source: Path, folder: Path) -> None:
    """Runs in a child process so its peak RSS is measured alone."""
    from loraforge.datastore.ingest import ingest_file

    started = time.perf_counter()
    sha = hashlib.sha256()
    with source.open("rb") as f:
        while block := f.read(4 * 1024 * 1024):
            sha.update(block)
    hashed = time.perf_counter()
    result = ingest_file(source, folder=folder, filename="chat.jsonl", source_sha256=sha.hexdigest())
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "sha256_s": round(hashed - started, 2),
                "ingest_s": round(done - hashed, 2),
                "format": result.format,
                "rows": result.total_rows,
                "valid_rows": result.valid_rows,
                "invalid_rows": result.invalid_rows,
                "normalized_bytes": result.normalized_bytes,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ingest_child(Path(args.child[0]), Path(args.child[1]))
        return

    work = args.keep or Path(tempfile.mkdtemp(prefix="lf-ingest-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "chat.jsonl"
    started = time.perf_counter()
    rows = generate(source, args.size_mb * 1024 * 1024)
    generate_s = time.perf_counter() - started
    # The original is moved into the version folder, as the server does.
    folder = work / "version"
    folder.mkdir(exist_ok=True)
    size = source.stat().st_size

    wall = time.perf_counter()
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(source), str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    wall_s = time.perf_counter() - wall
    if child.returncode != 0:
        print(child.stderr, file=sys.stderr)
        raise SystemExit(child.returncode)
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    from loraforge.datastore import preview

    total = preview.row_count(folder)
    pages = max(1, total // args.page_size)
    rng = random.Random(1)
    latencies = []
    for _ in range(args.pages):
        page = rng.randrange(pages)
        t = time.perf_counter()
        items = preview.page(folder, start=page * args.page_size, count=args.page_size)
        latencies.append((time.perf_counter() - t) * 1000)
        assert len(items) == args.page_size
    latencies.sort()
    search_t = time.perf_counter()
    found = preview.search(folder, q="forge adapter rank", skip=0, limit=20, scan_limit=100_000)
    search_ms = (time.perf_counter() - search_t) * 1000

    print(
        json.dumps(
            {
                "benchmark": "dataset_ingest",
                "file_bytes": size,
                "generated_rows": rows,
                "generate_s": round(generate_s, 1),
                **measured,
                "sha256_plus_ingest_wall_s": round(wall_s, 2),
                "ingest_mb_per_s": round(size / 1024 / 1024 / measured["ingest_s"], 1),
                "peak_rss_mb": round(peak_rss_mb, 1),
                "preview_pages": args.pages,
                "preview_page_size": args.page_size,
                "preview_p50_ms": round(statistics.median(latencies), 3),
                "preview_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 3),
                "preview_max_ms": round(latencies[-1], 3),
                "search_first_page_ms_100k_rows": round(search_ms, 1),
                "search_matches_in_100k_rows": found.matched,
            },
            indent=2,
        )
    )
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
