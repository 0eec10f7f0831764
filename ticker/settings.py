"""Settings: one validated model, read once (CLI flags > env ``TICKER_*`` > TOML file > defaults).

The model is sectioned (``settings.server.port``, ``settings.feed.history_size``, …) while the
names users write stay flat: a field's name is its TOML key and, upper-cased after
``TICKER_``, its environment variable (``port`` / ``TICKER_PORT``). Every field is declared
once here, with its range; validation, ``--print-config`` and the example file's stated ranges
(checked by tests/test_settings.py) all derive from that one declaration.

A part plugged into the app (Web Push) declares its own section as a :class:`Part` subclass;
the wiring point passes it to :func:`load_settings` and readers get it back, typed, with
:meth:`Settings.part`. Nothing else in the project reads the environment.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ticker.feed.names import SOURCE_NAME_PATTERN
from ticker.net.addresses import parse_origin
from ticker.newsroom.articles import CATEGORY_PATTERN, LANGUAGE_PATTERN
from ticker.settings_sources import (
    ENV_PREFIX,
    EnvFlatSource,
    LoadRequest,
    SettingsError,
    TomlFlatSource,
    loading,
    one_line,
)
from ticker.web.clientaddr import parse_networks

SOURCE_FORMATS = ("jhu-csse-daily", "json")
_MiB = 1024 * 1024
_DAY = 24 * 3600


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

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        # A str in, a Secret out; dumped (``--print-config``, logs) only as its mask.
        return core_schema.union_schema(
            [core_schema.is_instance_schema(cls),
             core_schema.no_info_after_validator_function(cls, core_schema.str_schema())],
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda secret: "**********" if secret else ""),
        )


def _split_list(value: Any) -> Any:
    """Env values are text: ``a, b`` (or a JSON list) for a list setting."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return tuple(item.strip() for item in text.split(",") if item.strip())
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(_split_list)]


def _http_url_or_empty(name: str, value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL (or empty), not {value!r}")
    return value


class Section(BaseModel):
    """One group of settings. Field names are the flat names users write."""

    # Refuse NaN and infinity everywhere: "nan" passes every range check as False and
    # "inf" turns a bound into none (a history that never ages, a rate never reached).
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              validate_default=True)


class Part(Section):
    """The settings section of a part plugged into the app (e.g. Web Push's ``push``)."""

    section: ClassVar[str]


class ServerSettings(Section):
    host: str = "127.0.0.1"
    # 0 asks the kernel for a free port (tests); ``serve`` prints the one it got.
    port: int = Field(default=8080, ge=0, le=65535)
    # Server processes on the port (SO_REUSEPORT): one per core; above 1 needs a shared
    # broker (redis://), since memory:// keeps the feed inside one process.
    processes: int = Field(default=1, ge=1, le=256)
    public_url: str = ""
    site_name: str = Field(default="Newsroom", min_length=1, max_length=200)
    timezone: str = "UTC"
    # demo: the embedded defaults may invent what production must be told (VAPID subject).
    mode: Literal["demo", "production"] = "demo"
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed when ticker
    # asks who a client is (per-client rate limits). Empty: the socket's peer is the client.
    trusted_proxies: StrList = ()
    webhook_secret: Secret = Secret("")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known IANA zone") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        return _http_url_or_empty("public_url", value)

    @property
    def clock_zone_label(self) -> str:
        return "GMT" if self.timezone in ("UTC", "Etc/UTC", "GMT") else self.timezone


class StorageSettings(Section):
    data_dir: Path = Path("./ticker-data")
    # Empty means sqlite:///<data_dir>/ticker.db (see ``database_url_resolved``).
    database_url: str = ""
    broker_url: str = "memory://"

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:///, postgresql:// or postgres://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return value

    @property
    def database_url_resolved(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'ticker.db').as_posix()}"


class LoggingSettings(Section):
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                         BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)] = "INFO"
    log_format: Literal["json", "text"] = "json"


class FeedSettings(Section):
    # History per channel: enough to ride out a reconnect or a phone waking up, bounded so
    # memory does not grow with traffic (at most history_size x publish_max_bytes a channel).
    history_size: int = Field(default=200, ge=1, le=100_000)
    history_seconds: float = Field(default=24 * 3600.0, gt=0, le=30 * _DAY)
    headlines_recent: int = Field(default=10, ge=1, le=1000)
    # 64 KiB is far above any legitimate client frame (subscribe lists, time requests); a
    # subscribe naming a few channels needs about 1 KiB, so less than that breaks clients.
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * _MiB)
    # Bytes the kernel has not accepted yet for one client before we call it slow. Under
    # 64 KiB a burst of ordinary messages on a busy link would drop healthy clients; the top
    # bounds server memory per connection.
    ws_send_buffer_bytes: int = Field(default=512 * 1024, ge=64 * 1024, le=64 * _MiB)
    # 0 turns pings off (behind a proxy that pings); below 0.1 s the pings would be the traffic.
    ws_heartbeat_seconds: float = Field(default=30.0, ge=0, le=3600)
    # Client frames per second (token bucket, burst = 2x) before the connection is a flood.
    ws_max_client_rate: float = Field(default=20.0, gt=0, le=10_000)
    # Helper threads that write a large broadcast's frames beside the event loop (the GIL
    # is released in ``send``); 0 writes everything on the loop thread. See ticker/feed/fanout.py.
    # One suits two cores: the other core's share of the sends takes it.
    ws_writer_threads: int = Field(default=1, ge=0, le=64)
    # Broadcasts to fewer subscribers than this stay on the loop thread: for them handing
    # work to a thread costs more than it saves.
    ws_writer_min_subscribers: int = Field(default=1000, ge=1, le=10_000_000)
    # What an SSE client waits before reconnecting: under 0.1 s is a reconnect storm.
    sse_retry_ms: int = Field(default=2000, ge=100, le=600_000)
    publish_max_bytes: int = Field(default=16 * 1024, ge=1024, le=4 * _MiB)
    # headlines:<language> and headlines:<category> channels are made on first use (a
    # widget may subscribe before the first article of its kind). The cap keeps a client
    # naming a million of them from making a million; the configured feeds' own never count.
    headlines_channels_max: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("ws_heartbeat_seconds")
    @classmethod
    def _heartbeat_off_or_sane(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("must be 0 (off) or at least 0.1 seconds")
        return value


class ClientSettings(Section):
    """What the client commands (tail, publish, alerts send) connect to."""

    url: str = ""  # empty: http://<host>:<port>
    api_token: Secret = Secret("")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url_or_empty("url", value)


class ConsoleSettings(Section):
    """Editors' logins to the ``/editor`` console."""

    # A session ends after this long without a request (a phone left on a desk), and in any
    # case this long after its login: a stolen cookie does not live for ever.
    session_idle_minutes: float = Field(default=60.0, ge=1, le=7 * 24 * 60)
    session_max_hours: float = Field(default=12.0, ge=0.1, le=30 * 24)
    # Login attempts allowed per account, and per client address, in 15 minutes (token
    # buckets: the allowance comes back gradually). An account's limit stops guessing one
    # password from many addresses; an address's, one address trying many accounts.
    login_attempts_per_account: int = Field(default=10, ge=1, le=10_000)
    login_attempts_per_address: int = Field(default=50, ge=1, le=100_000)


class SourceSettings(Section):
    """One data-ticker source, polled on a schedule and published on ``data:<name>``."""

    # The name is the channel's: data:<name> (ticker.feed.names).
    name: str = Field(pattern=f"^{SOURCE_NAME_PATTERN}$")
    url: str
    format: Literal["jhu-csse-daily", "json"]
    # Seconds between fetches: under 1 s is hammering an origin, over a week is forgotten.
    interval: float = Field(default=600.0, ge=1, le=7 * _DAY)
    attribution: str = ""
    # json format: output key -> dotted path into the document ("data.0.confirmed").
    fields: dict[str, str] = Field(default_factory=dict)
    # json format: dotted path to the document's own time; empty: the time of the fetch.
    as_of: str = ""
    # A fetch also delays startup by at most this much.
    timeout: float = Field(default=10.0, gt=0, le=300)
    max_bytes: int = Field(default=5 * _MiB, ge=1024, le=1024 * _MiB)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _json_needs_fields(self) -> SourceSettings:
        if self.format == "json" and not self.fields:
            raise ValueError("json format needs a [sources.fields] table")
        return self


class NewsroomSettings(Section):
    """Articles in (the CMS webhook, polled feeds) and what a breaking one triggers."""

    # auto: a breaking article becomes a push alert at once; approve: it waits in the
    # console's queue for an editor's click; off: breaking is only a flag on the article.
    breaking_policy: Literal["auto", "approve", "off"] = "approve"
    # Exact origins (scheme://host:port) that feeds and data sources may fetch although
    # they are private addresses: test stand-ins, an intranet CMS. One list for both, so an
    # operator has one place to look; nothing they redirect to is exempted.
    feeds_allow_private: StrList = ()
    # A webhook article is a few KB; the cap bounds what an unauthenticated caller makes us
    # read before the signature is checked.
    article_max_bytes: int = Field(default=64 * 1024, ge=1024, le=4 * _MiB)

    @field_validator("feeds_allow_private")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            parse_origin(entry)
        return value


class NewsFeedSettings(Section):
    """One RSS or Atom feed, polled on a schedule; its entries become articles."""

    name: str = Field(pattern=f"^{SOURCE_NAME_PATTERN}$")
    url: str
    # Seconds between polls: under 10 s is hammering a CMS, over a week is forgotten.
    interval: float = Field(default=300.0, ge=1, le=7 * _DAY)
    # Defaults for entries that name none (the entry's, then the feed's own, come first).
    language: str = Field(default="", pattern=f"^({LANGUAGE_PATTERN})?$")
    category: str = Field(default="", pattern=f"^({CATEGORY_PATTERN})?$")
    timeout: float = Field(default=10.0, gt=0, le=300)
    # Feeds are usually well under 1 MiB; the cap is enforced while reading, so a hostile
    # or broken origin costs at most this much memory.
    max_bytes: int = Field(default=5 * _MiB, ge=1024, le=256 * _MiB)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


P = TypeVar("P", bound=Part)


class Settings(BaseSettings):
    """Every setting, by section. Build it with :func:`load_settings` (or directly, with flat
    keyword arguments, in tests: ``Settings(data_dir=tmp, port=0)``; that reads no env)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    newsroom: NewsroomSettings = Field(default_factory=NewsroomSettings)
    sources: tuple[SourceSettings, ...] = ()
    feeds: tuple[NewsFeedSettings, ...] = ()

    # Warnings from loading (a contract name this version ignores), for the CLI to print.
    _notices: tuple[str, ...] = PrivateAttr(default=())

    @property
    def notices(self) -> tuple[str, ...]:
        return self._notices

    @classmethod
    def sections(cls) -> dict[str, type[Section]]:
        """Section attribute -> its model (the platform's and the parts loaded)."""
        out: dict[str, type[Section]] = {}
        for name, info in cls.model_fields.items():
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, Section) and kind is not SourceSettings:
                out[name] = kind
        return out

    @classmethod
    def flat_names(cls) -> dict[str, str]:
        """Flat setting name (TOML key, ``TICKER_`` suffix) -> the section that holds it."""
        out: dict[str, str] = {}
        for section, model in cls.sections().items():
            for name in model.model_fields:
                if name in out:
                    raise TypeError(f"setting {name!r} is in both {out[name]} and {section}")
                out[name] = section
        return out

    @model_validator(mode="before")
    @classmethod
    def _group_flat_names(cls, data: Any) -> Any:
        """``{"port": 1}`` (from TOML, env or flags) -> ``{"server": {"port": 1}}``."""
        if not isinstance(data, Mapping):
            return data
        owners = cls.flat_names()
        out: dict[str, Any] = {}
        grouped: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in owners:
                grouped.setdefault(owners[key], {})[key] = value
            else:
                out[key] = value
        for section, values in grouped.items():
            given = out.get(section, {})
            if isinstance(given, BaseModel):
                given = given.model_dump()
            out[section] = {**given, **values}
        return out

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, value: tuple[SourceSettings, ...]) -> tuple[SourceSettings, ...]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("two [[sources]] have the same name")
        return value

    @field_validator("feeds")
    @classmethod
    def _unique_feeds(cls, value: tuple[NewsFeedSettings, ...]) -> tuple[NewsFeedSettings, ...]:
        names = [f.name for f in value]
        if len(names) != len(set(names)):
            raise ValueError("two [[feeds]] have the same name")
        return value

    def part(self, kind: type[P]) -> P:
        """A plugged-in part's section; its defaults when the part was not loaded."""
        value = self.__dict__.get(kind.section)
        return value if isinstance(value, kind) else kind()

    @property
    def server_url(self) -> str:
        """Where the client commands find the server: ``url``, else ``http://host:port``."""
        if self.client.url:
            return self.client.url.rstrip("/")
        host = self.server.host
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.server.port}"

    def redacted(self) -> dict[str, Any]:
        """A printable view by section (secrets masked): startup log, ``--print-config``."""
        return self.model_dump(mode="json")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        request = loading.get()
        if request is None:  # built in code: its arguments and the defaults, nothing else
            return (init_settings,)
        return (init_settings, EnvFlatSource(settings_cls, request),
                TomlFlatSource(settings_cls, request))


def number_range(info: FieldInfo) -> str | None:
    """A number setting's range as the example file states it: ``0..65535``, ``>0..10000``."""
    bounds: dict[str, Any] = {}
    for rule in info.metadata:
        for key in ("ge", "gt", "le", "lt"):
            if getattr(rule, key, None) is not None:
                bounds[key] = getattr(rule, key)
    if not bounds:
        return None

    def show(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else str(value)

    low = f"{show(bounds['ge'])}" if "ge" in bounds else f">{show(bounds['gt'])}"
    high = f"{show(bounds['le'])}" if "le" in bounds else f"<{show(bounds['lt'])}"
    return f"{low}..{high}"


__all__ = ["ENV_PREFIX", "NewsFeedSettings", "NewsroomSettings", "Part", "Secret", "Settings",
           "SettingsError", "SourceSettings", "load_settings", "number_range", "settings_class"]


@functools.cache
def settings_class(parts: tuple[type[Part], ...] = ()) -> type[Settings]:
    """The model with the platform's sections and one more per part (``settings.push``)."""
    if not parts:
        return Settings
    fields: dict[str, Any] = {p.section: (p, Field(default_factory=p)) for p in parts}
    model: type[Settings] = create_model("Settings", __base__=Settings, __module__=__name__,
                                         **fields)
    model.flat_names()  # two sections claiming one name is a programming error: fail now
    return model


def secret_names(cls: type[Settings]) -> set[str]:
    return {name for model in cls.sections().values()
            for name, info in model.model_fields.items() if info.annotation is Secret}


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    parts: Iterable[type[Part]] = (),
    **overrides: Any,
) -> Settings:
    """Build the settings: ``overrides`` (CLI flags) > env ``TICKER_*`` > TOML file > defaults.

    ``parts`` are the sections of the parts plugged in (the CLI passes Web Push's), so their
    names are known to the env and file checks. Raises :class:`SettingsError`, one line.
    """
    env = os.environ if environ is None else environ
    path = config_file or env.get(ENV_PREFIX + "CONFIG") or None
    request = LoadRequest(environ=env, config_file=Path(path) if path else None)
    flags = {key: value for key, value in overrides.items() if value is not None}
    request.origins.update({key: "command line" for key in flags})
    cls = settings_class(tuple(parts))
    token = loading.set(request)
    try:
        settings = cls(**flags)
    except ValidationError as exc:
        raise SettingsError(one_line(exc, request, cls.flat_names(), secret_names(cls))) from None
    finally:
        loading.reset(token)
    settings._notices = tuple(request.notices)
    return settings
