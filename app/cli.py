"""The ``cots`` command line: one entry point whose subcommands come from the ``cots.commands`` group.

app/ and trainer/ never import each other; each registers its subcommands through an entry point
(see pyproject.toml), and this module only composes them.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points

# Before anything imports torch: OpenMP's spin-waiting threads make a shared desktop CPU several times
# slower (one text query: 353 ms spinning vs 24 ms passive, bench/RESULTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from cots_core.errors import CotsError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cots",
        description="Search your photos and videos in plain language, and train the COTS model on your own captions.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging information")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry in sorted(entry_points(group="cots.commands"), key=lambda e: e.name):
        try:
            entry.load()(subparsers)
        except Exception as error:  # noqa: BLE001 - one broken command group must not take down the others
            logging.getLogger(__name__).warning("the %s commands are unavailable: %s", entry.name, error)
    return parser


def register_library_commands(subparsers: argparse._SubParsersAction) -> None:
    """Library subcommands (index, search, status, gui, demo, ...)."""
    from app import library_cli

    library_cli.register(subparsers)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CotsError, FileNotFoundError, NotADirectoryError, PermissionError, ValueError) as error:
        print(f"cots: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
