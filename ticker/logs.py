"""Structured logs: one JSON object per line (or plain text for a terminal), never a secret.

Secrets are kept out at two depths. First, the third-party loggers whose DEBUG output
echoes what passes through them stay at WARNING whatever the root level (``QUIET``):
aiosqlite logs every statement with its parameters (the VAPID private key, subscribers'
``auth`` and ``p256dh``, token hashes), asyncpg its queries and arguments, websockets every
handshake header (``Authorization`` included) and frame. A filter that tried to spot
secrets inside a parameter tuple would be guesswork (a base64url key looks like any other
string); not emitting those records is certain, and an operator who turns on DEBUG wants
ticker's own decisions, not every SQL statement. Second, every formatted line passes
:func:`redact`, which masks what has a recognisable shape wherever it appears: ``tk_``
API tokens, ``Bearer`` credentials, query parameters with a secret-looking name (the
access log prints request lines, and a token put in a URL would land there), and
passwords in URLs (``postgresql://user:password@host``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

# Attributes every LogRecord has; anything else came in through ``extra=`` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# Loggers that print statement parameters or protocol headers at DEBUG (see above).
QUIET = ("aiosqlite", "asyncpg", "websockets")

MASK = "***"
_SECRET_NAME = r"[\w.-]*?(?:token|key|secret|auth|passw(?:or)?d|signature|sig|credential)[\w.-]*"
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "?token=…", "&access_token=…", "&key=…" in request lines, Referers and logged URLs.
    (re.compile(rf"([?&;]{_SECRET_NAME}=)[^&#;\s\"'\\]+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"\b(Bearer\s+)[^\s\"',;\\]+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(r"\btk_[A-Za-z0-9_-]{8,}"), f"tk_{MASK}"),
    # The password of a URL's user info: scheme://user:password@host
    (re.compile(r"(://[^/\s:@\"']*:)[^@/\s\"']+@"), rf"\1{MASK}@"),
)


def redact(line: str) -> str:
    """``line`` with every credential of a recognisable shape replaced by ``***``."""
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log is one line per request; keep it but at the chosen level.
    logging.getLogger("aiohttp.access").setLevel(max(logging.INFO, root.level))
    # APScheduler logs every job run at INFO (the clock alone: once a minute); jobs log
    # what matters themselves, so keep only its warnings.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
