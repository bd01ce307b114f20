"""One line for an operator when a dependency cannot be reached: never a traceback.

The command-line tools catch what a down NATS, Postgres or HTTP server raises and print
`one_line_failure(exc, ...)` on stderr before exiting non-zero.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redacted_url(url: str) -> str:
    """`url` without its password (a DSN may carry one)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def one_line_failure(exc: BaseException, what: str, url: str) -> str:
    """`cannot reach <what> at <url>: <error>`, one line, the URL's password left out."""
    message = " ".join(str(exc).split())[:200]
    error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"cannot reach {what} at {redacted_url(url)}: {error}"
