"""Engine sub-commands of `loraforge`: train, demo-model, merge.

`train` runs the very same process every executor launches (`python -m loraforge.engine run`)
and draws its progress bar from the same event stream, so what a researcher sees in a terminal is
what the server sees. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from loraforge.engine.demo_families import ARCHS
from loraforge.engine.events import (
    ErrorEvent,
    EvalEvent,
    LineStreamParser,
    LogEvent,
    MetricEvent,
    StatusEvent,
)


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model from a job spec (YAML/JSON) in the foreground")
    p.add_argument("spec", type=Path, help="job spec, LLaMA-Factory-style YAML or JSON")
    p.add_argument(
        "--run-dir", type=Path, default=None, help="run directory (default: output_dir or runs/<name>)"
    )
    p.add_argument("--quiet", action="store_true", help="hide library log lines (events still show)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser(
        "demo-model",
        help="build a tiny random-init model with a local tokenizer",
        description="Build a random-init model of one family (its own chat template, the layout of an "
        "LLaMA-Factory template) with a tokenizer trained on the bundled text; no download.",
    )
    p.add_argument("out_dir", type=Path)
    p.add_argument("--arch", choices=list(ARCHS), default="qwen2", help="model family (default: qwen2)")
    p.add_argument("--size", choices=["tiny", "small"], default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_demo_model)

    p = sub.add_parser("merge", help="merge a LoRA adapter into its base model")
    p.add_argument("adapter_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--base", default=None, help="base model (default: from adapter_config.json)")
    p.set_defaults(handler=cmd_merge)


def _default_run_dir(spec_path: Path, output_dir: str | None) -> Path:
    if output_dir:
        return Path(output_dir)
    return Path("runs") / f"{spec_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from loraforge.engine.spec_loading import SpecError, dump_spec, load_spec

    console = Console(stderr=True)
    try:
        spec = load_spec(args.spec)
    except SpecError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 2
    run_dir: Path = (args.run_dir or _default_run_dir(args.spec, spec.output_dir)).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(json.dumps(dump_spec(spec), indent=2), encoding="utf-8")
    console.print(f"run directory: [bold]{run_dir}[/bold]")

    proc = subprocess.Popen(
        [sys.executable, "-m", "loraforge.engine", "run", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
    )

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        console.print("[yellow]stopping: saving a checkpoint…[/yellow]")
        proc.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    parser = LineStreamParser()
    final: str | None = None
    error: ErrorEvent | None = None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[steps]}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[tps]} tok/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("starting", total=None, steps="", loss="-", tps="-", eta="-")
            assert proc.stdout is not None
            while True:
                chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(65536)
                events = parser.feed(chunk) if chunk else parser.close()
                for ev in events:
                    if isinstance(ev, MetricEvent):
                        progress.update(
                            task,
                            total=ev.total_steps,
                            completed=ev.step,
                            steps=f"{ev.step}/{ev.total_steps}",
                            loss=f"{ev.loss:.4f}" if ev.loss is not None else "-",
                            tps=f"{ev.tokens_per_s:,.0f}" if ev.tokens_per_s else "-",
                            eta=_fmt_eta(ev.eta_s),
                        )
                    elif isinstance(ev, StatusEvent):
                        progress.update(task, description=ev.status)
                        if ev.status in {"succeeded", "failed", "cancelled"}:
                            final = ev.status
                            if ev.message:
                                progress.console.print(f"{ev.status}: {escape(ev.message)}")
                    elif isinstance(ev, EvalEvent):
                        ppl = f", perplexity {ev.perplexity:.3f}" if ev.perplexity else ""
                        progress.console.print(f"step {ev.step}: eval loss {ev.eval_loss:.4f}{ppl}")
                    elif isinstance(ev, ErrorEvent):
                        error = ev
                    elif isinstance(ev, LogEvent):
                        if ev.seq is not None:  # the engine's own log events
                            progress.console.print(f"[cyan]{escape(ev.message)}[/cyan]")
                        elif not args.quiet:
                            progress.console.print(escape(ev.message), style="dim", highlight=False)
                    elif ev.type in {"checkpoint", "artifact"}:
                        progress.console.print(f"{ev.type}: {escape(str(getattr(ev, 'path', '')))}")
                if not chunk:
                    break
    finally:
        rc = proc.wait()
        signal.signal(signal.SIGINT, previous)

    if error is not None:
        console.print(f"[red]error [{error.code}]: {escape(error.message)}[/red]")
        if error.suggestion:
            console.print(f"[yellow]suggestion: {escape(error.suggestion)}[/yellow]")
    out = run_dir / "output"
    if final == "succeeded":
        console.print(f"[green]done.[/green] output: [bold]{out}[/bold]")
        summary = out / "summary.json"
        if summary.exists():
            console.print(summary.read_text(encoding="utf-8"))
    elif final == "cancelled":
        console.print(f"cancelled; checkpoints in [bold]{run_dir / 'checkpoints'}[/bold]")
    console.print(f"events: {run_dir / 'events.jsonl'}  tensorboard: {run_dir / 'tensorboard'}")
    if final == "succeeded" or final == "cancelled":
        return 0
    return rc or 1


def _fmt_eta(eta: float | None) -> str:
    if eta is None:
        return "-"
    m, s = divmod(int(eta), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def cmd_demo_model(args: argparse.Namespace) -> int:
    from loraforge.engine.demo_model import build_demo_model

    path = build_demo_model(args.out_dir, arch=args.arch, size=args.size, seed=args.seed)
    print(path)
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from loraforge.engine.merge import merge_adapter

    out = merge_adapter(args.adapter_dir, args.out_dir, base_model=args.base)
    print(f"merged model written to {out}")
    return 0
