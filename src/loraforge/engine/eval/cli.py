"""`loraforge eval SPEC.yaml`: one evaluation, headless, in the foreground.

The spec uses LLaMA-Factory's prediction keys (see `eval/spec.py`); the output folder gets LF's
`generated_predictions.jsonl` and `predict_results.json` beside our own files. Progress is one
line per batch on stderr; `--events` prints the engine's marked event lines on stdout instead, as
an executor reads them. Bad input (spec, files, model) ends with a message and exit status 2, never
a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import IO, Any, cast

from loraforge.engine.events import EventWriter, MetricEvent, StatusEvent, parse_line


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a model on a test set (LLaMA-Factory-style prediction YAML)")
    p.add_argument("spec", type=Path, help="evaluation spec, YAML or JSON")
    p.add_argument(
        "--output-dir", type=Path, default=None, help="result folder (default: the spec's output_dir)"
    )
    p.add_argument("--events", action="store_true", help="print marked engine events on stdout")
    p.set_defaults(handler=cmd_eval)


class _ProgressLines(io.TextIOBase):
    """An event stream that a person reads: status changes and a progress line per batch."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            event = parse_line(line)
            if isinstance(event, MetricEvent) and event.total_steps:
                eta = f", ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
                print(f"  {event.step}/{event.total_steps} samples{eta}", file=sys.stderr, flush=True)
            elif isinstance(event, StatusEvent) and event.status != "failed":  # the error says why
                print(f"{event.status}{': ' + event.message if event.message else ''}", file=sys.stderr)
        return len(text)


def cmd_eval(args: argparse.Namespace) -> int:
    from loraforge.engine.eval.errors import eval_failure, fail
    from loraforge.engine.eval.spec import load_eval_spec
    from loraforge.engine.spec_loading import SpecError

    try:
        spec = load_eval_spec(args.spec)
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    output = args.output_dir or (Path(spec.output_dir) if spec.output_dir else None)
    if output is None:
        output = Path("runs") / f"eval-{args.spec.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    output = output.expanduser().resolve()
    writer = EventWriter(output, stream=None if args.events else cast(IO[str], _ProgressLines()))
    try:
        from loraforge.engine.eval.runner import run_evaluation

        result = run_evaluation(spec, output, writer)
    except Exception as exc:
        failure = eval_failure(exc)
        if failure is None:
            raise
        return fail(writer, *failure)
    finally:
        writer.close()
    print(json.dumps({"output_dir": str(output), "metrics": result["metrics"]}, indent=2, ensure_ascii=False))
    return 0
