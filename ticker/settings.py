"""Settings: read once (env ``TICKER_*`` > TOML file > defaults) into one typed object.

Nothing else in the project reads the environment; ``create_app(settings)`` and the CLI
commands receive a :class:`Settings` and pass what they need along.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticker.feed.names import SOURCE_NAME_RE
from ticker.web.clientaddr import parse_networks

ENV_PREFIX = "TICKER_"

# The public push services a browser may hand us an endpoint on. Anything else is refused
# so that a subscription cannot make the server send requests to arbitrary hosts.
DEFAULT_PUSH_HOSTS = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    "*.notify.windows.com",
)

SOURCE_FORMATS = ("jhu-csse-daily", "json")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


class Secret:
    """A string that never shows itself in ``repr``/``str`` (logs, tracebacks, ``--help``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class SourceSettings:
    """One data-ticker source, polled on a schedule and published on ``data:<name>``."""

    name: str
    url: str
    format: str
    interval: float = 600.0
    attribution: str = ""
    # json format: output key -> dotted path into the document ("data.0.confirmed").
    fields: Mapping[str, str] = field(default_factory=dict)
    # json format: dotted path to the document's own time; empty: the time of the fetch.
    as_of: str = ""
    timeout: float = 10.0
    max_bytes: int = 5 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./ticker-data")
    # Empty means sqlite:///<data_dir>/ticker.db (resolved by ``database_url_resolved``).
    database_url: str = ""
    broker_url: str = "memory://"
    site_name: str = "Newsroom"
    timezone: str = "UTC"
    public_url: str = ""
    log_level: str = "INFO"
    log_format: str = "json"  # json | text

    # --- push -------------------------------------------------------------------------
    vapid_subject: str = ""
    push_allowed_hosts: tuple[str, ...] = DEFAULT_PUSH_HOSTS
    push_topics: tuple[str, ...] = ("breaking", "news", "sport", "business", "culture")
    push_ttl: int = 4 * 3600  # seconds; a push service keeps an undelivered message this long
    # A refused prompt is not shown again for this many days.
    push_prompt_snooze_days: int = 30
    # Subscriptions one client address may create per minute (token bucket, burst = rate).
    # A browser subscribes once; a few per minute covers retries and several devices behind
    # one NAT while stopping a script from filling the table.
    push_subscribe_rate_per_minute: float = 30.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed when ticker
    # asks who a client is (per-client rate limits). Empty: the socket's peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # Requests in flight at once for one node, and open connections per push-service host:
    # enough to hide a push service's latency, few enough not to look like an attack to it.
    # 128 measured ~9% faster than 64 (bench/push.py: larger claim batches per commit);
    # 256 gained nothing more and delayed the first push past 50 ms.
    push_concurrency: int = 128
    push_connections_per_host: int = 32
    # Helper processes that encrypt pushes (about half of a push's CPU) while the event loop
    # sends; 0 encrypts on the event loop. One roughly doubles throughput on two cores.
    push_encrypt_processes: int = 1
    # Attempts (first send included) before a 5xx/timeout is given up; never a deletion.
    push_max_attempts: int = 6
    # demo: the embedded defaults may invent what production must be told (VAPID subject).
    mode: str = "demo"  # demo | production

    # --- secrets ----------------------------------------------------------------------
    webhook_secret: Secret = Secret("")  # noqa: RUF009 (immutable, safe to share)
    # --- CLI clients (tail, publish, alerts): where the server is and the token to use ----
    url: str = ""  # empty: http://<host>:<port>
    api_token: Secret = Secret("")  # noqa: RUF009 (immutable, safe to share)

    # --- feed -------------------------------------------------------------------------
    # History per channel: enough to ride out a reconnect or a phone waking up, bounded so
    # memory does not grow with traffic.
    history_size: int = 200
    history_seconds: float = 24 * 3600.0
    headlines_recent: int = 10
    # 64 KiB is far above any legitimate client frame (subscribe lists, time requests).
    ws_max_message_bytes: int = 64 * 1024
    # Bytes the kernel has not accepted yet for one client before we call it slow.
    ws_send_buffer_bytes: int = 512 * 1024
    ws_heartbeat_seconds: float = 30.0
    # Client frames per second (token bucket, burst = 2x) before the connection is a flood.
    ws_max_client_rate: float = 20.0
    # Helper threads that write a large broadcast's frames beside the event loop (the GIL
    # is released in ``send``); 0 writes everything on the loop thread. See ticker/feed/fanout.py.
    # One suits two cores: the other core's share of the sends takes it.
    ws_writer_threads: int = 1
    # Broadcasts to fewer subscribers than this stay on the loop thread: for them handing
    # work to a thread costs more than it saves.
    ws_writer_min_subscribers: int = 1000
    sse_retry_ms: int = 2000
    publish_max_bytes: int = 16 * 1024
    sources: tuple[SourceSettings, ...] = ()

    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ticker.db').as_posix()}"

    @property
    def server_url(self) -> str:
        if self.url:
            return self.url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def clock_zone_label(self) -> str:
        return "GMT" if self.timezone in ("UTC", "Etc/UTC", "GMT") else self.timezone

    def redacted(self) -> dict[str, Any]:
        """A printable view (secrets masked): startup logs, ``ticker serve --print-config``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = repr(value)
            elif isinstance(value, Path):
                value = str(value)
            elif f.name == "sources":
                value = [s.name for s in value]
            out[f.name] = value
        return out


_CHANNEL_SAFE = SOURCE_NAME_RE  # a source names the channel data:<source>


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Turn a TOML or env value into the type of the default ``target``."""
    try:
        if isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if isinstance(target, int):
            return int(raw)
        if isinstance(target, float):
            return float(raw)
        if isinstance(target, Path):
            return Path(str(raw))
        if isinstance(target, Secret):
            return Secret(str(raw))
        if isinstance(target, tuple):
            if isinstance(raw, str):
                return tuple(x.strip() for x in raw.split(",") if x.strip())
            return tuple(str(x) for x in raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name!r}: cannot use {raw!r}") from exc


def _source(raw: Mapping[str, Any]) -> SourceSettings:
    try:
        name = str(raw["name"])
        url = str(raw["url"])
        fmt = str(raw["format"])
    except KeyError as exc:
        raise SettingsError(f"[[sources]] entry lacks {exc.args[0]!r}") from None
    if not _CHANNEL_SAFE.match(name):
        raise SettingsError(f"source name {name!r} must match {SOURCE_NAME_RE.pattern[:-2]}")
    if fmt not in SOURCE_FORMATS:
        raise SettingsError(f"source {name!r}: format must be one of {', '.join(SOURCE_FORMATS)}")
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"source {name!r}: url must be http(s)")
    fields = raw.get("fields", {})
    if fmt == "json" and not fields:
        raise SettingsError(f"source {name!r}: json format needs a [sources.fields] table")
    interval = float(raw.get("interval", 600))
    if interval < 1:
        raise SettingsError(f"source {name!r}: interval must be at least 1 second")
    return SourceSettings(
        name=name,
        url=url,
        format=fmt,
        interval=interval,
        attribution=str(raw.get("attribution", "")),
        fields={str(k): str(v) for k, v in dict(fields).items()},
        as_of=str(raw.get("as_of", "")),
        timeout=float(raw.get("timeout", 10)),
        max_bytes=int(raw.get("max_bytes", 5 * 1024 * 1024)),
    )


def _validate(s: Settings) -> None:
    if not 0 <= s.port <= 65535:
        raise SettingsError("port must be between 0 and 65535")
    if not s.broker_url.startswith("memory://"):
        # The scaled-out broker (redis://) arrives with multi-node support; refusing beats
        # silently running each node on its own.
        raise SettingsError("broker_url: only memory:// is supported by this version")
    if s.mode not in ("demo", "production"):
        raise SettingsError("mode must be 'demo' or 'production'")
    if s.log_format not in ("json", "text"):
        raise SettingsError("log_format must be 'json' or 'text'")
    if s.vapid_subject and not s.vapid_subject.startswith(("mailto:", "https:")):
        raise SettingsError("vapid_subject must start with 'mailto:' or 'https:'")
    try:
        parse_networks(s.trusted_proxies)
    except ValueError as exc:
        raise SettingsError(f"trusted_proxies: {exc}") from None
    if s.push_subscribe_rate_per_minute <= 0:
        raise SettingsError("push_subscribe_rate_per_minute must be positive")
    if s.push_encrypt_processes < 0:
        raise SettingsError("push_encrypt_processes must be 0 (on the event loop) or more")
    if min(s.push_concurrency, s.push_connections_per_host, s.push_max_attempts) < 1:
        raise SettingsError("push_concurrency, push_connections_per_host and "
                            "push_max_attempts must be at least 1")
    if not 0 <= s.ws_writer_threads <= 64:
        raise SettingsError("ws_writer_threads must be between 0 and 64")
    if s.ws_writer_min_subscribers < 1:
        raise SettingsError("ws_writer_min_subscribers must be 1 or more")
    if s.ws_heartbeat_seconds < 0:
        raise SettingsError("ws_heartbeat_seconds must be 0 (off) or positive")
    if s.push_ttl <= 0:
        raise SettingsError("push_ttl must be positive (0 makes push services drop messages)")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(s.timezone)
    except Exception as exc:
        raise SettingsError(f"timezone {s.timezone!r} is not a known IANA zone") from exc
    names = [src.name for src in s.sources]
    if len(names) != len(set(names)):
        raise SettingsError("two [[sources]] have the same name")


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings: ``overrides`` (CLI flags) > env ``TICKER_*`` > TOML file > defaults."""
    env = dict(os.environ if environ is None else environ)
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG") or None
    file_values: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: {exc}") from None

    defaults = Settings()
    known = {f.name for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, raw in file_values.items():
        if key == "sources":
            continue
        if key not in known:
            raise SettingsError(f"config file: unknown setting {key!r}")
        values[key] = _coerce(key, raw, getattr(defaults, key))
    for name in known - {"sources"}:
        raw_env = env.get(ENV_PREFIX + name.upper())
        if raw_env is not None:
            values[name] = _coerce(name, raw_env, getattr(defaults, name))
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _coerce(key, raw, getattr(defaults, key))
    sources = tuple(_source(raw) for raw in file_values.get("sources", []))
    settings = dataclasses.replace(defaults, **values, sources=sources)
    _validate(settings)
    return settings
