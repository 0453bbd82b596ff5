"""The `spineplan` command line. Exit codes: 0 ok, 2 bad input, 3 internal failure."""
from __future__ import annotations

import argparse
import logging
import sys

from app import commands
from app.logs import configure, write_crash_report
from spine_core.errors import Cancelled, SpineError

EXIT_OK, EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_CANCELLED = 0, 2, 3, 130

log = logging.getLogger("spineplan")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors are bad input too
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"spineplan: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spineplan", description="SpinePlan: spine CT/MR segmentation, labelling "
                     "and surgical planning.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for register in commands.REGISTRY:
        register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    configure(args.verbose)
    try:
        return int(args.func(args) or EXIT_OK)
    except SpineError as exc:
        print(f"spineplan: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Cancelled:
        print("spineplan: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("spineplan: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: log, never dump
        report = write_crash_report(exc)
        log.debug("internal failure", exc_info=exc)
        print(f"spineplan: internal error ({type(exc).__name__}: {exc}). "
              f"Details were written to {report}", file=sys.stderr)
        return EXIT_FAILURE


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
