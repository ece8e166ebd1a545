"""Command line: ``python -m pipeline <command> ...`` runs the same steps as the app, for long local runs.

After ``pip install .`` the same commands run from any folder as ``dpo-studio <command> ...``.

Each command lives in its own module under ``pipeline.commands`` and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (``args -> exit code``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = (
    "filter",
    "generate",
    "argilla",
    "export",
    "judge_check",
    "train",
)  # modules; judge_check adds "judge-check"


def build_parser() -> argparse.ArgumentParser:
    prog = "dpo-studio" if Path(sys.argv[0]).name == "dpo-studio" else "python -m pipeline"
    parser = argparse.ArgumentParser(prog=prog, description="DPO Studio from the command line.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"pipeline.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("Interrupted: finished rows are kept; rerun the same command to resume.", file=sys.stderr)
        return 130
