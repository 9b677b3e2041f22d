"""Errors that are the user's to fix: the `fas` command prints them as one line, no traceback."""


class UserError(Exception):
    """A problem with the user's input or environment, with what to do about it."""

    exit_code = 1


class UsageError(UserError):
    """A bad command line or params file (exit status 2, like argparse)."""

    exit_code = 2
