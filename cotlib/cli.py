"""Command line: `python -m cotlib <step> ...`; each step is one call into cotlib."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .data import CotlibError, cache_dir, download


def cmd_tasks(args: argparse.Namespace) -> None:
    from .experiments import task_table  # pandas is slow to import; only when asked
    table = task_table()[["type", "train", "test", "teacher_train", "teacher_test"]]
    print(table.round(2).to_string(na_rep="-"))
    print("\nteacher: text-davinci-002 Zero-shot-CoT (recorded), accuracy % with fair "
          "comparison (numbers equal as numbers, last letters compared as letters)")


def cmd_download(args: argparse.Namespace) -> None:
    fetched = download(args.dest, mirror=args.mirror, only=args.only)
    print(f"{len(fetched)} file(s) downloaded into {args.dest}; the rest were already there")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cotlib", description=__doc__)
    steps = p.add_subparsers(dest="step", required=True)
    steps.add_parser("tasks", help="the 12 tasks: sizes and recorded teacher accuracy"
                     ).set_defaults(run=cmd_tasks)
    d = steps.add_parser("download", help="fetch the data files at their pinned commits")
    d.add_argument("--dest", type=Path, default=cache_dir() / "data",
                   help="where to put them (default: %(default)s)")
    d.add_argument("--mirror", help="base URL serving the same layout instead of GitHub")
    d.add_argument("--only", nargs="*", help="path prefixes to fetch (default: all)")
    d.set_defaults(run=cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except CotlibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
