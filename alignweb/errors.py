"""What a failed job tells its user: one rule for runs, generation and export jobs.

The user sees the exception's type and a short message; the traceback, with the server's file
layout in it, goes to the server log only.
"""

import logging
import re

logger = logging.getLogger("alignweb.jobs")

MAX_MESSAGE_CHARS = 500
# An absolute POSIX path's directories: the file name is useful to the user, where it lives is not.
_DIRECTORIES = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+")


def user_error_text(exc: BaseException) -> str:
    """Log ``exc`` with its traceback and return the one line a user may see.

    Call it inside the ``except`` block so the log carries the traceback:

    >>> try:
    ...     open("/srv/alignweb/var/missing.json")
    ... except OSError as error:
    ...     user_error_text(error)
    "FileNotFoundError: [Errno 2] No such file or directory: 'missing.json'"
    """
    logger.error("Job failed", exc_info=(type(exc), exc, exc.__traceback__))
    message = _DIRECTORIES.sub("", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name
