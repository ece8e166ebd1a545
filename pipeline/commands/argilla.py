"""`python -m pipeline argilla` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("argilla", help="not available yet")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    print("'argilla' is not available yet in this version of DPO Studio.", file=sys.stderr)
    return 2
