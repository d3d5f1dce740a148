"""What every command-line tool shares: a user mistake ends as one line on stderr and exit code 2."""
import sys

#: errors raised for bad input (ConfigError is a ValueError, FileNotFoundError an OSError)
USER_ERRORS = (ValueError, OSError, KeyError, TypeError)


def report_user_error(err):
    """Print ``error: <message>`` (KeyError's message without its quotes) and return exit code 2."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else err
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_cli(parser, run, argv=None):
    """Parse ``argv`` with ``parser`` and return ``run(args)``; a user mistake returns exit code 2."""
    args = parser.parse_args(argv)
    try:
        return run(args)
    except USER_ERRORS as err:
        return report_user_error(err)
