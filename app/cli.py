"""The `spineplan` command line. Exit codes: 0 ok, 2 bad input, 3 internal failure, 130 cancelled
(Ctrl-C, or the terminal closed: SIGHUP), 143 terminated (SIGTERM)."""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading

from app import commands
from app.logs import configure, write_crash_report
from spine_core.errors import Cancelled, SpineError

EXIT_OK, EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_CANCELLED, EXIT_TERMINATED = 0, 2, 3, 130, 143

log = logging.getLogger("spineplan")


class Stopped(BaseException):
    """SIGTERM or SIGHUP, raised where the command is, so that its ``finally`` blocks remove what it was
    writing (a BaseException: no ``except Exception`` of a stage or a case swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum, _frame) -> None:
    for other in (signal.SIGTERM, signal.SIGHUP):     # a second signal must not cut the clean-up short
        signal.signal(other, signal.SIG_IGN)
    raise Stopped(signum)


# Commands that keep the default signal handling: batch (its journal resumes after any kill, and its
# process pool would wait for the running cases), gui (Qt's event loop and the window's close).
_DEFAULT_SIGNALS = ("batch", "gui")


@contextlib.contextmanager
def _stop_on_signals(command: str):
    """SIGTERM and SIGHUP end the command through ``Stopped`` (only the main thread can install
    handlers; the previous ones are put back afterwards)."""
    if command in _DEFAULT_SIGNALS or threading.current_thread() is not threading.main_thread():
        yield
        return
    # a signal ignored on the way in stays ignored (`nohup spineplan segment ...` must survive SIGHUP)
    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


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
        with _stop_on_signals(args.command):
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
    except Stopped as exc:
        print(f"spineplan: stopped ({exc})", file=sys.stderr)
        return EXIT_TERMINATED if exc.signum == signal.SIGTERM else EXIT_CANCELLED
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
