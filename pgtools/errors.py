"""The exception types that carry a user-facing message, and the exit status each one means."""


class PgtoolsError(Exception):
    """Bad input or a failed precondition; the CLI prints ``str(err)`` as one ``Error:`` line and exits 1."""

    exit_code = 1


class Damaged(PgtoolsError):
    """A file's bytes cannot be read back (truncated, corrupted chunks or metadata)."""


class Different(PgtoolsError):
    """A check ran and found a difference or damage (compare, inspect --verify): exit status 3."""

    exit_code = 3
