"""`loraforge export MODEL_DIR --format gguf --quant q8_0 OUT`: one export, in the foreground.

The same code as the platform's export jobs (`job.run_export`), printing a line per status and a
progress line now and then on stderr (`--events`: the engine's marked event lines on stdout, as an
executor reads them). Bad input ends with the error's code and message and exit status 2, never a
traceback; Ctrl-C removes the partial files.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import IO, Any, cast

from loraforge.engine.events import EventWriter, MetricEvent, StatusEvent, parse_line
from loraforge.engine.export.spec import FORMATS


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a model to GGUF / Ollama / ONNX / merged safetensors, verified by loading it back",
    )
    p.add_argument("model_dir", type=Path, help="model folder (for gguf_lora/merged: the base model)")
    p.add_argument("out_dir", type=Path, help="output folder (files + export.json)")
    p.add_argument("--format", choices=FORMATS, default="gguf")
    p.add_argument(
        "--quant",
        default=None,
        help="gguf/ollama: f32 f16 bf16 q8_0 q4_0 (q4_k_m q5_k_m q6_k with "
        "llama-cpp-python); gguf_lora: f32 f16 q8_0; onnx: fp32 int4",
    )
    p.add_argument(
        "--adapter", default=None, help="a LoRA adapter folder (merged first for gguf/ollama/onnx)"
    )
    p.add_argument(
        "--template", default="auto", help="chat template for the Ollama Modelfile (default: auto)"
    )
    p.add_argument("--name", default=None, help="model name in the file's metadata and for `ollama create`")
    p.add_argument("--no-verify", action="store_true", help="skip loading the result back")
    p.add_argument("--events", action="store_true", help="print marked engine events on stdout")
    p.set_defaults(handler=cmd_export)


class _ProgressLines(io.TextIOBase):
    """Status changes and every 10 % of progress, for a person."""

    def __init__(self) -> None:
        self._shown = -1

    def write(self, text: str) -> int:
        for line in text.splitlines():
            event = parse_line(line)
            if isinstance(event, MetricEvent) and event.total_steps:
                tenth = event.step * 10 // event.total_steps
                if tenth != self._shown:
                    self._shown = tenth
                    print(f"  {event.step}/{event.total_steps} tensors", file=sys.stderr, flush=True)
            elif isinstance(event, StatusEvent) and event.status != "failed":
                print(f"{event.status}{': ' + event.message if event.message else ''}", file=sys.stderr)
        return len(text)


def cmd_export(args: argparse.Namespace) -> int:
    from loraforge.engine.export.errors import ExportCancelled
    from loraforge.engine.export.job import run_export
    from loraforge.engine.export.spec import parse_export_spec
    from loraforge.engine.failures import EngineError

    stopping = {"asked": False}

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        stopping["asked"] = True
        print("stopping: removing the partial files…", file=sys.stderr)

    block = {
        "model_name_or_path": str(args.model_dir.resolve()),
        "adapter_name_or_path": str(Path(args.adapter).resolve()) if args.adapter else None,
        "format": args.format,
        "quantization": args.quant,
        "template": args.template,
        "verify": not args.no_verify,
        "name": args.name or args.model_dir.resolve().name,
    }
    writer = EventWriter(None, stream=None if args.events else cast(IO[str], _ProgressLines()))
    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        spec = parse_export_spec(block)
        document = run_export(spec, args.out_dir.resolve(), writer, lambda: stopping["asked"])
    except ExportCancelled:
        writer.status("cancelled", "partial files removed")
        return 130
    except EngineError as exc:
        writer.emit(
            "error", code=exc.code, message=exc.message, suggestion=exc.suggestion, details=exc.details
        )
        writer.status("failed", exc.message)
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        if exc.suggestion:
            print(exc.suggestion, file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
        writer.close()
    writer.status("succeeded")
    print(json.dumps({"output_dir": str(args.out_dir.resolve()), **document}, indent=2, ensure_ascii=False))
    return 0
