"""Errors that are the user's to fix: the `fas` command prints them as one line, no traceback."""


class UserError(Exception):
    """A problem with the user's input or environment, with what to do about it (exit status 1)."""

    exit_code = 1


class UsageError(UserError):
    """A bad command line or params file (exit status 2, like argparse)."""

    exit_code = 2


class MissingInput(UserError, FileNotFoundError):
    """An input file that is not there; the message names the command that writes it."""


class DataError(UserError, ValueError):
    """Input data that cannot give a valid result (a split without one class, no rows)."""
