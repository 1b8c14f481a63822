"""The ``pevm`` command: subcommands, error handling and exit codes.

Each subcommand lives in its own module of :mod:`pevm.cli` that exposes
``register(subparsers)``; it adds its parser and sets ``func(args) -> int``.
Exit codes: 0 success, 1 a block did not match (or a check failed), 2 bad input or
usage, 141 the reader of its output went away (``pevm info | head -1``: stopped
quietly, as the shell reports a process a closed pipe ended). A
:class:`~pevm.errors.PevmError` is printed as one line (``--debug`` adds the
traceback).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Sequence

from pevm.errors import PevmError
from pevm.runner import failure_text

#: Subcommand modules, in the order ``pevm --help`` lists them.
COMMANDS: tuple[str, ...] = ("run", "bench", "analyze", "fetch", "merge", "gen",
                             "hashbench", "info")

EXIT_OK, EXIT_MISMATCH, EXIT_INPUT, EXIT_PIPE = 0, 1, 2, 141


def print_case_error(where: str, exc: BaseException, debug: bool) -> None:
    """The one line for a case that ended with ``exc`` while others go on
    (``pevm bench``, ``pevm analyze``); ``--debug`` adds the traceback."""
    if debug and not isinstance(exc, PevmError):
        traceback.print_exception(exc)
    print(f"pevm: error: {where}: {failure_text(exc)}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pevm",
        description="Parallel EVM block executor: runs Ethereum blocks optimistically "
                    "in parallel on top of py-evm and checks the result against "
                    "py-evm's sequential execution.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"pevm.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    #: the command as typed (recorded in JSON outputs, e.g. pevm bench's)
    args.command_line = shlex.join(["pevm", *words])
    # py-evm logs every rejected block as a warning; pevm reports rejections itself.
    logging.getLogger("eth").setLevel(logging.DEBUG if args.debug else logging.ERROR)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:
        # Nothing more can be written; point stdout at /dev/null so that the
        # interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except PevmError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"pevm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pevm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
