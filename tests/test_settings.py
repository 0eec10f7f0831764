"""Settings: flags beat env beat file beat defaults; bad values and unknown names are refused by
name; secrets never show; the example file and the model cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from subscribers.settings import PushSettings
from ticker.settings import (
    NewsFeedSettings,
    Secret,
    Settings,
    SettingsError,
    SourceSettings,
    load_settings,
    number_range,
    settings_class,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "ticker.example.toml"
PARTS = (PushSettings,)


def load(config: Path | None = None, env: dict[str, str] | None = None, **flags: Any) -> Settings:
    return load_settings(config, environ=env or {}, parts=PARTS, **flags)


def test_defaults_run_everything_embedded() -> None:
    s = load()
    assert (s.server.host, s.server.port, s.storage.broker_url, s.server.site_name,
            s.server.timezone) == ("127.0.0.1", 8080, "memory://", "Newsroom", "UTC")
    assert s.storage.database_url_resolved == "sqlite:///ticker-data/ticker.db"
    assert s.server.clock_zone_label == "GMT"
    assert s.part(PushSettings).push_ttl == 4 * 3600


def test_env_overrides_file_which_overrides_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('port = 9000\nsite_name = "File News"\ntimezone = "Europe/London"\n'
                   "push_ttl = 60\n")
    s = load(cfg, {"TICKER_PORT": "9100", "TICKER_PUSH_TTL": "120"})
    assert (s.server.port, s.server.site_name, s.server.timezone) == (
        9100, "File News", "Europe/London")
    assert s.part(PushSettings).push_ttl == 120
    s2 = load(env={"TICKER_CONFIG": str(cfg)})
    assert (s2.server.port, s2.part(PushSettings).push_ttl) == (9000, 60)
    assert load(cfg, port=1234).server.port == 1234  # CLI flags win over all
    assert load(cfg, {"TICKER_PORT": "9100"}, port=1234).server.port == 1234


def test_list_settings_accept_comma_separated_or_json_env_values() -> None:
    s = load(env={"TICKER_PUSH_ALLOWED_HOSTS": "a.example, http://127.0.0.1:9"})
    assert s.part(PushSettings).push_allowed_hosts == ("a.example", "http://127.0.0.1:9")
    s = load(env={"TICKER_TRUSTED_PROXIES": '["10.0.0.0/8", "::1"]'})
    assert s.server.trusted_proxies == ("10.0.0.0/8", "::1")


def test_a_part_not_loaded_reads_as_its_defaults() -> None:
    s = load_settings(environ={})
    assert s.part(PushSettings) == PushSettings()
    with pytest.raises(SettingsError, match="unknown setting TICKER_PUSH_TTL"):
        load_settings(environ={"TICKER_PUSH_TTL": "60"})  # only a loaded part's names exist


def test_settings_built_in_code_take_flat_names_and_read_no_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TICKER_PORT", "1")
    monkeypatch.setenv("TICKER_NOT_A_SETTING", "1")
    s = Settings(data_dir=tmp_path, port=0)
    assert (s.storage.data_dir, s.server.port) == (tmp_path, 0)


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"TICKER_PORT": "eighty"}, "setting port (TICKER_PORT): must be a whole number"),
        ({"TICKER_PORT": "70000"}, "setting port (TICKER_PORT): must be at most 65535"),
        ({"TICKER_TIMEZONE": "Mars/Olympus"}, "setting timezone (TICKER_TIMEZONE): "),
        ({"TICKER_VAPID_SUBJECT": "newsdesk@example.com"}, "setting vapid_subject"),
        ({"TICKER_MODE": "staging"}, "setting mode (TICKER_MODE): must be 'demo' or"),
        ({"TICKER_PUSH_TTL": "0"}, "setting push_ttl (TICKER_PUSH_TTL): must be at least 1"),
        ({"TICKER_PUSH_TTL": "inf"}, "setting push_ttl"),
        ({"TICKER_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "setting trusted_proxies"),
        ({"TICKER_WS_WRITER_THREADS": "-1"}, "setting ws_writer_threads"),
        ({"TICKER_WS_WRITER_MIN_SUBSCRIBERS": "0"}, "setting ws_writer_min_subscribers"),
        ({"TICKER_WS_SEND_BUFFER_BYTES": "-1"}, "setting ws_send_buffer_bytes"),
        ({"TICKER_WS_MAX_MESSAGE_BYTES": "-1"}, "setting ws_max_message_bytes"),
        ({"TICKER_PUBLISH_MAX_BYTES": "-1"}, "setting publish_max_bytes"),
        ({"TICKER_HISTORY_SECONDS": "-1"}, "setting history_seconds"),
        ({"TICKER_HISTORY_SIZE": "-5"}, "setting history_size"),
        ({"TICKER_WS_MAX_CLIENT_RATE": "-3"}, "setting ws_max_client_rate"),
        ({"TICKER_WS_MAX_CLIENT_RATE": "nan"}, "must be a finite number"),
        ({"TICKER_HISTORY_SECONDS": "inf"}, "setting history_seconds (TICKER_HISTORY_SECONDS)"),
        ({"TICKER_WS_HEARTBEAT_SECONDS": "0.01"}, "must be 0 (off) or at least 0.1 seconds"),
        ({"TICKER_PUSH_CONCURRENCY": "1.5"}, "setting push_concurrency"),
        ({"TICKER_DATABASE_URL": "mysql://db"}, "setting database_url"),
        ({"TICKER_BROKER_URL": "kafka://x"}, "setting broker_url"),
        ({"TICKER_URL": "ftp://x"}, "setting url (TICKER_URL)"),
        ({"TICKER_LOG_FORMAT": "xml"}, "setting log_format"),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_the_setting(
        env: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env=env)
    message = str(caught.value)
    assert line in message and "\n" not in message


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ("prot = 1\n", "unknown setting 'prot'; did you mean port?"),
        ("port = \n", "config file"),
        ("history_seconds = nan\n", "setting history_seconds (history_seconds in "),
        ("history_seconds = inf\n", "must be a finite number"),
        ("ws_max_client_rate = -inf\n", "setting ws_max_client_rate"),
        ("push_ttl = 0\n", "setting push_ttl"),
        ('[[sources]]\nname = "x"\nurl = "ftp://a"\nformat = "json"\n'
         "[sources.fields]\na = 'b'\n", "[[sources]] entry 1 url"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "xml"\n', "format"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "json"\n', "fields"),
        ('[[sources]]\nname = "Bad Name"\nurl = "http://a"\nformat = "jhu-csse-daily"\n',
         "[[sources]] entry 1 name"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "jhu-csse-daily"\ninterval = 0\n',
         "interval"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "jhu-csse-daily"\ntimeout = -1\n',
         "timeout"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "jhu-csse-daily"\nmax_bytes = 0\n',
         "max_bytes"),
        ('[[sources]]\nurl = "http://a"\nformat = "jhu-csse-daily"\n', "entry 1 name: is required"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "jhu-csse-daily"\nbogus = 1\n',
         "bogus"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "jhu-csse-daily"\n' * 2,
         "same name"),
    ],
)
def test_bad_config_files_are_refused_with_a_reason(
        tmp_path: Path, toml: str, fragment: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(toml)
    with pytest.raises(SettingsError) as caught:
        load(cfg)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_config_path_that_is_missing_or_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load(tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match=f"config file {tmp_path} is a directory"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("TICKER_PROT", "TICKER_PORT"), ("TICKER_PUSH_TLL", "TICKER_PUSH_TTL"),
     ("TICKER_API_TOKN", "TICKER_API_TOKEN"), ("TICKER_HISTORY_SECOND", "TICKER_HISTORY_SECONDS")],
)
def test_an_unknown_env_name_is_refused_with_the_nearest_valid_one(
        name: str, suggestion: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load(env={name: "1"})
    assert str(caught.value) == f"unknown setting {name}; did you mean {suggestion}?"


def test_names_that_are_not_settings_but_valid_are_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text("port = 9001\n")
    s = load(env={"TICKER_CONFIG": str(cfg), "TICKER_API_TOKEN": "tk_1",
                  "TICKER_URL": "http://ticker.internal:81/", "TICKER_TEST_CHROMIUM": "/x",
                  "OTHER": "x"})
    assert s.server.port == 9001 and s.client.api_token.reveal() == "tk_1"
    assert s.server_url == "http://ticker.internal:81"
    assert s.notices == ()


def test_the_newsroom_names_of_the_contract_are_settings_now(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('feeds_allow_private = ["http://127.0.0.1:1"]\n'
                   '[[feeds]]\nname = "site"\nurl = "https://n.example/rss"\nlanguage = "en"\n')
    s = load(cfg, {"TICKER_BREAKING_POLICY": "auto",
                   "TICKER_FEEDS_ALLOW_PRIVATE": "http://127.0.0.1:1, https://cms.lan:8443"})
    assert s.notices == ()
    assert s.newsroom.breaking_policy == "auto"
    assert s.newsroom.feeds_allow_private == ("http://127.0.0.1:1", "https://cms.lan:8443")
    assert [(f.name, f.interval, f.language) for f in s.feeds] == [("site", 300.0, "en")]


@pytest.mark.parametrize(("text", "names"), [
    ('feeds_allow_private = ["http://h"]\n', "feeds_allow_private"),
    ('breaking_policy = "sometimes"\n', "breaking_policy"),
    ('[[feeds]]\nname = "x"\nurl = "ftp://a"\n', "[[feeds]] entry 1 url"),
    ('[[feeds]]\nname = "x"\nurl = "http://a"\ninterval = 0\n', "[[feeds]] entry 1 interval"),
    ('[[feeds]]\nname = "x"\nurl = "http://a"\ncategory = "Two Words"\n',
     "[[feeds]] entry 1 category"),
    ('[[feeds]]\nname = "x"\nurl = "http://a"\n' * 2, "same name"),
])
def test_bad_newsroom_settings_are_refused_naming_them(
        tmp_path: Path, text: str, names: str) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError, match=re.escape(names)):
        load(cfg)


def test_secrets_never_show_in_repr_or_the_redacted_view() -> None:
    s = load(env={"TICKER_WEBHOOK_SECRET": "hunter2", "TICKER_API_TOKEN": "tk_x"})
    assert s.server.webhook_secret.reveal() == "hunter2"
    for text in (repr(s), str(s), str(s.redacted()), str(s.server.webhook_secret)):
        assert "hunter2" not in text and "tk_x" not in text
    assert s.redacted()["client"]["api_token"] == "**********"
    assert isinstance(s.client.api_token, Secret)


def test_server_url_brackets_ipv6_and_replaces_wildcards() -> None:
    assert load(host="::1", port=81).server_url == "http://[::1]:81"
    assert load(host="0.0.0.0", port=82).server_url == "http://127.0.0.1:82"


def test_example_config_loads() -> None:
    s = load(EXAMPLE)
    assert [src.name for src in s.sources] == ["covid19"]
    assert s.sources[0].attribution == "JHU CSSE"


KEY_LINE = re.compile(r"^(?:# )?([a-z][a-z0-9_]*) = (.*)$")


def example_keys() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Keys (set or commented out) of the example, before and inside ``[[sources]]`` and
    ``[[feeds]]``, each with its line's text after ``=``."""
    top: dict[str, str] = {}
    source: dict[str, str] = {}
    feed: dict[str, str] = {}
    current = top
    for line in EXAMPLE.read_text().splitlines():
        if line.lstrip("# ") == "[[sources]]":
            current = source
        elif line.lstrip("# ") == "[[feeds]]":
            current = feed
        elif line.lstrip("# ").startswith("[sources.fields]"):
            source.setdefault("fields", "")
            current = {}  # its keys are a source's output names, not settings
        elif match := KEY_LINE.match(line):
            current.setdefault(match[1], match[2])
    return top, source, feed


def test_every_setting_is_in_the_example_and_every_example_key_is_a_setting() -> None:
    top, source, feed = example_keys()
    assert set(top) == set(settings_class(PARTS).flat_names())
    assert set(source) == set(SourceSettings.model_fields)
    assert set(feed) == set(NewsFeedSettings.model_fields)


def test_the_example_states_each_numbers_range_as_the_model_declares_it() -> None:
    top, source, feed = example_keys()
    model = settings_class(PARTS)
    fields = {name: info for section in model.sections().values()
              for name, info in section.model_fields.items()}
    for names, infos in ((top, fields), (source, SourceSettings.model_fields),
                         (feed, NewsFeedSettings.model_fields)):
        for name, rest in names.items():
            declared = number_range(infos[name])
            stated = re.search(r"# range (\S+?):?(?:\s|$)", rest)
            assert (stated[1] if stated else None) == declared, name
