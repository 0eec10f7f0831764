"""How a command stops: a one-line reason that says what failed (never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp


class CliError(Exception):
    """A one-line reason to stop with a non-zero exit."""


class Unreachable(CliError):
    """A client command could not connect to the server (exit 1, like before)."""


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """For the client commands: a failure to connect says which server could not be reached
    (only these commands say "cannot reach the server"; a local failure says what it was)."""
    try:
        yield
    except (aiohttp.ClientConnectionError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach the server at {url}: {reason}") from None
