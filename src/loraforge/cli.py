"""The `loraforge` command line.

Each area registers its own sub-commands (server side in `loraforge.cli_server`, the training
engine in `loraforge.engine.cli`), so this file stays a dispatcher. Handlers import heavy
libraries (torch, transformers) lazily: `loraforge serve` must start without touching torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from loraforge import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loraforge", description="LoRAForge: self-hosted fine-tuning platform for open LLMs."
    )
    parser.add_argument("--version", action="version", version=f"loraforge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from loraforge import cli_server
    from loraforge.engine import cli as engine_cli
    from loraforge.engine.eval import cli as eval_cli
    from loraforge.engine.export import cli as export_cli

    cli_server.register(sub)
    engine_cli.register(sub)
    eval_cli.register(sub)
    export_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    result = handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
