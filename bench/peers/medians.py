"""Median table of peer-bench JSON lines (the harness's compare.sh columns plus overhead and the
ratios docs/benchmarks.md reports). Usage: python3 medians.py RESULTS.jsonl [...]"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def main(paths: list[str]) -> None:
    lines = [line for p in paths for line in Path(p).read_text(encoding="utf-8").splitlines()]
    rows = [json.loads(line) for line in lines if line.strip()]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((f"{r['peer']} {r.get('version', '')}", r.get("packing", "")), []).append(r)

    def med(rs: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rs))

    print(
        f"{'peer':<22}{'mode':<9}{'n':>2}{'wall_s':>8}{'train_s':>9}{'overhead':>9}"
        f"{'tok/s':>8}{'rss_mb':>8}{'loss':>8}"
    )
    table: dict[tuple[str, str], dict[str, float]] = {}
    for (peer, mode), rs in groups.items():
        keys = ("wall_s", "train_runtime_s", "tokens_per_s", "peak_rss_mb", "final_loss")
        m = {k: med(rs, k) for k in keys}
        m["overhead_s"] = float(statistics.median(r["wall_s"] - r["train_runtime_s"] for r in rs))
        table[(peer.split()[0], mode)] = m
        print(
            f"{peer:<22}{mode:<9}{len(rs):>2}{m['wall_s']:>8.1f}{m['train_runtime_s']:>9.1f}"
            f"{m['overhead_s']:>9.1f}{m['tokens_per_s']:>8.0f}{m['peak_rss_mb']:>8.0f}{m['final_loss']:>8.4f}"
        )
    lf_none = table.get(("llamafactory", "none"))
    if lf_none:
        print("\nratios (ours / LF, medians):")
        for ours, lf in (("none", "none"), ("grouped", "none"), ("packing", "packing"), ("neat", "neat")):
            a, b = table.get(("loraforge", ours)), table.get(("llamafactory", lf))
            if a and b:
                print(
                    f"  {ours:<8} vs LF {lf:<8} tok/s x{a['tokens_per_s'] / b['tokens_per_s']:.2f}  "
                    f"rss {a['peak_rss_mb']:.0f}/{b['peak_rss_mb']:.0f} MB  "
                    f"overhead {a['overhead_s']:.1f}/{b['overhead_s']:.1f} s  "
                    f"loss {a['final_loss']:.4f}/{b['final_loss']:.4f}"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
