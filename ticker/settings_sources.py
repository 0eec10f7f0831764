"""Where settings come from (env ``TICKER_*``, a TOML file) and how a refusal reads.

Both sources speak the flat names users write (``TICKER_PORT``, ``port = 8080``); the model
in :mod:`ticker.settings` groups them into sections. An unknown name is an error, not a
warning: a typo such as ``TICKER_PROT`` would otherwise leave a production server on a
default nobody chose, and the one-line refusal says which name was probably meant.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

ENV_PREFIX = "TICKER_"
# Names that are not settings but are not mistakes either.
NOT_SETTINGS = {
    f"{ENV_PREFIX}CONFIG",  # the config file's path, read before any setting
}
# The test suite's own switches (TICKER_TEST_CHROMIUM): a developer's shell may export them.
RESERVED_PREFIX = f"{ENV_PREFIX}TEST_"
# In CONTRACT.md for features this version does not have yet: a deployment written against
# the contract still starts, and is told the name has no effect.
NOT_YET: tuple[str, ...] = ()


# Arrays of tables in the TOML file only: [[sources]] (data tickers), [[feeds]] (RSS/Atom).
TABLES = ("sources", "feeds")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the one-line message names it."""


@dataclass
class LoadRequest:
    """One :func:`ticker.settings.load_settings` call: where to read, what was read where."""

    environ: Mapping[str, str]
    config_file: Path | None
    # flat name -> where its winning value came from ("TICKER_PORT", "port in t.toml", ...)
    origins: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)


# Set only while load_settings builds the model: a Settings made in code reads nothing else.
loading: ContextVar[LoadRequest | None] = ContextVar("ticker_settings_loading", default=None)


def _flat_names(settings_cls: type[BaseSettings]) -> dict[str, str]:
    names: dict[str, str] = settings_cls.flat_names()  # type: ignore[attr-defined]
    return names


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class EnvFlatSource(PydanticBaseSettingsSource):
    """``TICKER_<NAME>`` -> ``{"<name>": text}``; the model parses the text."""

    def __init__(self, settings_cls: type[BaseSettings], request: LoadRequest) -> None:
        super().__init__(settings_cls)
        self.request = request

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads by flat name

    def __call__(self) -> dict[str, Any]:
        names = _flat_names(self.settings_cls)
        out: dict[str, Any] = {}
        for key, value in sorted(self.request.environ.items()):
            if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
                continue
            name = key.removeprefix(ENV_PREFIX).lower()
            if name in names:
                out[name] = value
                self.request.origins.setdefault(name, key)
            elif name in NOT_YET:
                self.request.notices.append(f"{key} is not used by this version; ignored")
            elif not key.startswith(RESERVED_PREFIX):
                known = [ENV_PREFIX + n.upper() for n in names]
                raise SettingsError(f"unknown setting {key}{did_you_mean(key, known)}")
        return out


class TomlFlatSource(TomlConfigSettingsSource):
    """The TOML file (``--config`` or ``TICKER_CONFIG``): flat keys and ``[[sources]]``."""

    def __init__(self, settings_cls: type[BaseSettings], request: LoadRequest) -> None:
        self.request = request
        path = request.config_file
        if path is not None:
            # pydantic-settings skips a missing file quietly; one named on purpose must exist.
            if not path.exists():
                raise SettingsError(f"config file {path} does not exist")
            if path.is_dir():
                raise SettingsError(f"config file {path} is a directory")
        super().__init__(settings_cls, toml_file=path)
        names = _flat_names(settings_cls)
        for key in self.toml_data:
            if key in names or key in TABLES:
                continue
            if key in NOT_YET:
                request.notices.append(f"config file {path}: {key!r} is not used by this "
                                       "version; ignored")
                continue
            hint = did_you_mean(key, [*names, *TABLES])
            raise SettingsError(f"config file {path}: unknown setting {key!r}{hint}")
        self.init_kwargs = {k: v for k, v in self.init_kwargs.items() if k not in NOT_YET}

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            return super()._read_file(file_path)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {file_path}: {exc}") from None
        except OSError as exc:
            raise SettingsError(f"config file {file_path}: cannot read it: "
                                f"{(exc.strerror or str(exc)).lower()}") from None

    def __call__(self) -> dict[str, Any]:
        for key in self.init_kwargs:
            self.request.origins.setdefault(key, f"{key} in {self.request.config_file}")
        return super().__call__()


_PHRASES = {
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "finite_number": "must be a finite number (not nan or inf)",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_pattern_mismatch": "must match {pattern}",
    "missing": "is required",
    "extra_forbidden": "is not a setting",
}


def _phrase(error: Mapping[str, Any]) -> str:
    template = _PHRASES.get(error["type"])
    if template is not None:
        return template.format(**error.get("ctx", {}))
    message = str(error["msg"]).removeprefix("Value error, ")
    return message.replace("Input should be", "must be").replace("Input should", "must")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if not value or value != value.strip() or " " in value else value
    return repr(value)


def describe_error(error: Mapping[str, Any], request: LoadRequest | None,
                   names: Mapping[str, str], secret: set[str]) -> str:
    loc = tuple(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] in TABLES and isinstance(loc[1], int):
        subject = f"[[{loc[0]}]] entry {loc[1] + 1}" + (f" {loc[2]}" if len(loc) > 2 else "")
        if request is not None and request.config_file is not None:
            subject = f"config file {request.config_file}: {subject}"
    elif len(loc) >= 2 and loc[1] in names:
        name = str(loc[1])
        subject = f"setting {name}"
        origin = request.origins.get(name) if request is not None else None
        where = f" ({origin})" if origin else ""
    elif len(loc) == 1 and loc[0] in set(names.values()):
        subject = "settings"  # a rule across a section's settings; the message names them
    elif loc:
        subject = f"setting {loc[-1]}"
    else:
        subject = "settings"
    text = f"{subject}{where}: {_phrase(error)}"
    value = error.get("input")
    if (len(loc) >= 2 and loc[1] not in secret and error["type"] != "missing"
            and isinstance(value, str | int | float) and repr(value) not in text):
        text += f", got {_shown(value)}"  # unless the reason already quotes it
    return text


def one_line(exc: ValidationError, request: LoadRequest | None, names: Mapping[str, str],
             secret: set[str]) -> str:
    """Every problem pydantic found, each naming its setting, on one line."""
    return "; ".join(describe_error(e, request, names, secret) for e in exc.errors())
