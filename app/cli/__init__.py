"""The ``cots`` command line: one entry point whose subcommands come from the ``cots.commands`` group.

app/ and trainer/ never import each other; each registers its subcommands through an entry point
(see pyproject.toml), and this module only composes them. The app's own command groups are the modules
listed in ``register_library_commands``, each with a ``register(subparsers)``; the options they share
come from ``app.cli.common``. Every error ends here, in ``main``: one line on stderr and an exit status.
"""
from __future__ import annotations

import argparse
import logging
import os
import sqlite3
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
    """The app's subcommands: each command group (a module of this package) adds its own, in the order
    ``cots --help`` lists them. Imported here, not at the top: ``cots train`` needs none of them."""
    from app.cli import demo, desktop, gui, library, models, people

    for group in (library, demo, models, gui, desktop, people):
        group.register(subparsers)


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error a person can cause ends in one line on stderr and an exit status."""
    for stream in (sys.stdout, sys.stderr):
        try:  # a file name that is not UTF-8 must never make printing fail
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return 130
    except SystemExit as exit_:  # --help, or argparse's own one-line usage error
        return exit_.code if isinstance(exit_.code, int) else 2
    _quiet_library_warnings(args.verbose)
    handler = logging.StreamHandler()
    handler.setFormatter(_EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, handlers=[handler])
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as a message at interpreter exit
        return status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()  # `cots search x | head -1`: the reader has all it wanted
        return 141
    except UnicodeEncodeError as error:  # before ValueError (its parent): the last guard for a value SQLite or a file cannot take
        return _fail(f"'{_value_text(error.object)}' holds characters that are not text (bytes that are not "
                     "UTF-8?): give it as UTF-8")
    except (CotsError, ValueError) as error:
        return _fail(error)
    except sqlite3.DatabaseError as error:
        from app.library.db import database_error_message

        return _fail(database_error_message(getattr(args, "db", None), error))
    except (OSError, UnicodeError) as error:
        return _fail(error)
    except Exception as error:  # noqa: BLE001 - the last guard: one line, never a traceback
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"cots: internal error: {type(error).__name__}: {_one_line(error)} "
              "(run again with -v for details, and please report it)", file=sys.stderr)
        return 1


def _quiet_library_warnings(verbose: bool) -> None:
    """Pillow's, numpy's and OpenCV/ffmpeg's own complaints about a file ("Corrupt EXIF data", "moov atom not
    found") go to the log (shown with -v), not between our lines: a file that cannot be read is reported
    once, in our words, with its reason (``cots status``)."""
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.DEBUG if verbose else logging.ERROR)
    if not verbose:  # read when OpenCV first opens a video (it is imported later, lazily)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


class _EscapingFormatter(logging.Formatter):
    """Log messages quote file names, model ids and settings read from files: escaped like every other line
    (a message could otherwise recolour the terminal or fake lines). Tracebacks (-v) keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        from app.library.pathtext import display_text

        record.message = display_text(record.message)
        return super().formatMessage(record)


def _value_text(value: object) -> str:
    """The value an encoding failed on, escaped and cut to one short line."""
    from app.library.pathtext import display_text

    shown = display_text(value if isinstance(value, str) else repr(value))
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _one_line(error: BaseException | str) -> str:
    from app.library.pathtext import display_text

    return display_text(str(error))


def _fail(error: BaseException | str) -> int:
    print(f"cots: error: {_one_line(error)}", file=sys.stderr)
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that Python's final flush does not complain about the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass

