"""One error type for bad user input, and the CLI wrapper that turns it into
one clear line on stderr and exit code 2 (never a bare traceback)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, NoReturn, Sequence


class EdgekdError(ValueError):
    """A problem with the user's input (path, file, value). Its message must
    say what is wrong and how to fix it."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (library errors can be pages long)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (plus exit code 2)."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 (argparse API)
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def run_cli(main: Callable[[Sequence[str] | None], int], prog: str,
            argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`: a user error becomes one line on stderr and exit 2; an
    environment failure (full disk, I/O error) one line and exit 1. Anything
    else is a bug: one line too, and the traceback only with EDGEKD_DEBUG=1."""
    try:
        return main(argv)
    except EdgekdError as exc:
        sys.stderr.write(f"{prog}: error: {first_line(exc, 600)}\n")
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"{prog}: error: {exc.strerror or first_line(exc)}"
                         f"{f' ({exc.filename})' if exc.filename else ''}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for the user
        if os.environ.get("EDGEKD_DEBUG"):
            raise
        sys.stderr.write(f"{prog}: internal error: {type(exc).__name__}: {first_line(exc)} "
                         "(please report it; EDGEKD_DEBUG=1 shows the traceback)\n")
        return 1
