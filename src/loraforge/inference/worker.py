"""The builtin inference worker: an OpenAI-compatible HTTP server over transformers + PEFT.

    python -m loraforge.inference.worker --host 127.0.0.1 --port P [--model alias=folder ...]
        [--memory-budget-mb N] [--concurrency N]

The bearer token comes from the environment (`LORAFORGE_WORKER_TOKEN`), never the command line (which
other local users can read in the process list). Endpoints (all but /health need the token):

- `POST /v1/chat/completions`: the OpenAI body plus `loraforge: {"base": <folder or hub id>,
  "adapter": <folder> | null}`; without `loraforge`, `model` must be an alias given with `--model`.
  Streams SSE (`data: {chunk}` ... `data: [DONE]`), honours `stream_options.include_usage`; also accepts
  vLLM's `ignore_eos`. The worker does not split `<think>` (the gateway does, for every backend).
- `GET /v1/models`: the aliases. `GET /health`.
- `POST /admin/load {"base", "adapter"}` warms a model, `POST /admin/unload {"base"?, "adapter"?}`
  (nothing: every idle base), `GET /admin/stats`.

At most `--concurrency` generations run at once; the others wait first-come first-served (their number
is `queue_depth` in the stats). A client that disconnects from a stream cancels its generation.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from loraforge.inference.in_flight import FifoSlots, WorkerState
from loraforge.inference.model_cache import ModelCache
from loraforge.inference.worker_app import create_worker_app

TOKEN_ENV = "LORAFORGE_WORKER_TOKEN"  # noqa: S105 (a variable name, not a secret)


def _parse_aliases(values: list[str]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for value in values:
        alias, sep, folder = value.partition("=")
        if not sep or not alias or not folder:
            raise SystemExit(f"--model expects alias=folder, got {value!r}")
        aliases[alias] = str(Path(folder).expanduser().resolve())
    return aliases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loraforge.inference.worker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", action="append", default=[], metavar="ALIAS=FOLDER")
    parser.add_argument("--memory-budget-mb", type=int, default=8192)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"{TOKEN_ENV} must be set")
    if args.concurrency < 1:
        raise SystemExit("--concurrency must be >= 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state = WorkerState(
        token=token,
        aliases=_parse_aliases(args.model),
        cache=ModelCache(budget_bytes=args.memory_budget_mb * 1024 * 1024, device=args.device),
        slots=FifoSlots(args.concurrency),
    )
    # Import the heavy libraries before answering /health, so that "healthy" means ready to load.
    import peft  # noqa: F401
    import transformers  # noqa: F401
    import uvicorn

    uvicorn.run(create_worker_app(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
