"""The one exception type that carries a user-facing message."""


class PgtoolsError(Exception):
    """Bad input or a failed precondition; the CLI prints ``str(err)`` as one line and exits 1."""
