"""What every command-line tool shares: a user mistake ends as one line on stderr and exit code 2, a bug
keeps its traceback, and ``--debug`` shows the traceback of a user mistake too.

This module imports no torch, so a tool can check its arguments and paths before the heavy imports.
"""
import argparse
import os
import sys

#: user mistakes: bad values (ConfigError is a ValueError) and missing or unreadable files and weights
#: (FileNotFoundError and WeightsNotFoundError are OSErrors). Anything else (KeyError, TypeError ...) is a bug.
USER_ERRORS = (ValueError, OSError)

DEBUG_HELP = "show the full traceback of a user error too"


def report_user_error(err):
    """Print ``error: <message>`` and return exit code 2."""
    print(f"error: {err}", file=sys.stderr)
    return 2


def run_cli(parser, run, argv=None, intermixed=False):
    """Parse ``argv`` with ``parser`` (plus ``--debug``) and return ``run(args)`` (``None`` counts as 0); a user
    mistake returns exit code 2. ``intermixed``: options may come between positionals (``CONFIG key=value``)."""
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    args = (parser.parse_intermixed_args if intermixed else parser.parse_args)(argv)
    try:
        return run(args) or 0
    except USER_ERRORS as err:
        if args.debug:
            raise
        return report_user_error(err)


def require_path(path, what):
    """``path`` if it exists, else a one-line FileNotFoundError naming ``what`` (e.g. "reference image")."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} {path} not found")
    return path


def positive_int(text):
    """argparse type: an integer >= 1 (a bad value is a usage error before anything runs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def subcommand_debug_flag(subparser):
    """``--debug`` after a subcommand (``tool APP ... --debug``) as well as before it."""
    subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
