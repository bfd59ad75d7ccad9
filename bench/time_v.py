"""What `/usr/bin/time -v` reports for a whole process: wall time, CPU seconds and peak RSS."""

from __future__ import annotations

import re


def parse_time_v(text: str) -> dict[str, float]:
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    assert clock and rss, text
    wall = sum(float(x) * 60**i for i, x in enumerate(reversed(clock.group(1).split(":"))))
    cpu = 0.0
    for kind in ("User", "System"):
        found = re.search(rf"{kind} time \(seconds\): (\S+)", text)
        cpu += float(found.group(1)) if found else 0.0
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(int(rss.group(1)) / 1024)}
