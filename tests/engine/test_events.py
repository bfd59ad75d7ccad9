"""Event protocol: writer (seq, marker, events.jsonl) and the line-stream parser on noisy input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from loraforge.engine.events import (
    MARKER,
    CheckpointEvent,
    ErrorEvent,
    EventWriter,
    LineStreamParser,
    LogEvent,
    MetricEvent,
    StatusEvent,
    parse_line,
    read_events_file,
)


def test_writer_assigns_seq_and_writes_both_sinks(tmp_path: Path) -> None:
    out = io.StringIO()
    w = EventWriter(tmp_path, stream=out)
    w.status("loading_model")
    w.emit("metric", step=1, total_steps=10, loss=float("nan"), lr=1e-3)
    w.emit("error", code="nan_loss", message="boom", suggestion="lower lr")
    w.close()
    lines = out.getvalue().splitlines()
    assert all(line.startswith(MARKER) for line in lines)
    file_rows = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [r["seq"] for r in file_rows] == [1, 2, 3]
    assert file_rows[1]["type"] == "metric" and "loss" not in file_rows[1]  # NaN is not JSON: dropped
    assert all("ts" in r for r in file_rows)
    # stdout lines parse back to the same events
    parsed = [parse_line(x) for x in lines]
    assert isinstance(parsed[0], StatusEvent) and parsed[0].status == "loading_model"
    assert isinstance(parsed[1], MetricEvent) and parsed[1].step == 1 and parsed[1].seq == 2
    assert isinstance(parsed[2], ErrorEvent) and parsed[2].code == "nan_loss"


def test_writer_continues_seq_in_existing_run_dir(tmp_path: Path) -> None:
    w = EventWriter(tmp_path, stream=io.StringIO())
    w.status("training")
    w.close()
    w2 = EventWriter(tmp_path, stream=io.StringIO())
    ev = w2.status("succeeded")
    w2.close()
    assert ev is not None and ev.seq == 2


def test_disabled_writer_is_silent(tmp_path: Path) -> None:
    out = io.StringIO()
    w = EventWriter(tmp_path / "r1", stream=out, enabled=False)
    assert w.status("training") is None
    assert out.getvalue() == "" and not (tmp_path / "r1" / "events.jsonl").exists()


def test_writer_survives_a_closed_stdout(tmp_path: Path) -> None:
    out = io.StringIO()
    out.close()  # the server went away
    w = EventWriter(tmp_path, stream=out)
    w.status("training")
    w.status("succeeded")
    w.close()
    assert len(read_events_file(tmp_path / "events.jsonl")) == 2


def test_parser_on_noisy_lines() -> None:
    good = MARKER + json.dumps({"seq": 7, "ts": 1.0, "type": "checkpoint", "step": 5, "path": "/x"})
    cases = [
        "Some weights of the model checkpoint were not used",
        '{"seq": 1, "type": "status", "status": "training"}',  # JSON but unmarked: a library's
        MARKER + '{"seq": 3, "type": "status", "status": "trai',  # truncated
        MARKER + "not json at all",
        MARKER + '{"seq": 4, "type": "status", "status": "exploded"}',  # invalid value
        MARKER + '{"seq": 5, "type": "nonsense"}',
        MARKER + "[1, 2]",
        "\x00\xff garbage \ufffd",
        "(pid=4242) " + good,  # relay prefix (Ray)
        "10%|#         | 1/10\r20%|##        | 2/10\r" + good,  # tqdm carriage returns
        "",
    ]
    events = [parse_line(c) for c in cases]
    assert all(isinstance(e, LogEvent) and e.seq is None for e in events[:8])
    for e in events[8:10]:
        assert isinstance(e, CheckpointEvent) and e.step == 5 and e.seq == 7
    assert isinstance(events[10], LogEvent)
    assert parse_line(b"Traceback (most recent call last):").level == "error"  # type: ignore[union-attr]
    # the raw text of a garbled event line is kept for the log view
    assert events[2].message.startswith(MARKER)  # type: ignore[union-attr]


def test_extra_fields_are_kept() -> None:
    ev = parse_line(
        MARKER + json.dumps({"seq": 1, "ts": 1.0, "type": "metric", "step": 2, "rewards_margins": 0.5})
    )
    assert isinstance(ev, MetricEvent) and ev.model_extra == {"rewards_margins": 0.5}


def test_stream_parser_handles_arbitrary_chunking() -> None:
    buf = io.StringIO()
    w = EventWriter(None, stream=buf)
    for i in range(5):
        w.emit("metric", step=i + 1, total_steps=5, loss=1.0 / (i + 1), lr=0.1)
    w.status("succeeded")
    text = "warming up…\n" + buf.getvalue() + "bye without newline"
    data = text.encode("utf-8")
    for size in (1, 3, 7, 64, 4096):
        p = LineStreamParser()
        events = []
        for i in range(0, len(data), size):
            events += p.feed(data[i : i + size])  # splits UTF-8 sequences and lines anywhere
        events += p.close()
        types = [e.type for e in events]
        assert types == ["log"] + ["metric"] * 5 + ["status", "log"], (size, types)
        assert events[0].message == "warming up…"  # type: ignore[union-attr]
        assert [e.seq for e in events[1:7]] == [1, 2, 3, 4, 5, 6]


def test_stream_parser_caps_runaway_lines() -> None:
    p = LineStreamParser(max_line=100)
    out = p.feed("x" * 250)
    assert len(out) == 1 and isinstance(out[0], LogEvent)


def test_events_module_is_torch_free() -> None:
    code = (
        "import sys, loraforge.engine.events, loraforge.engine.failures; "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
