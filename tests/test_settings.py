"""Settings: env beats file beats defaults; bad values are refused by name; secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from ticker.settings import Secret, SettingsError, load_settings


def test_defaults_run_everything_embedded() -> None:
    s = load_settings(environ={})
    assert (s.host, s.port, s.broker_url, s.site_name, s.timezone) == (
        "127.0.0.1", 8080, "memory://", "Newsroom", "UTC")
    assert s.database_url_resolved == "sqlite:///ticker-data/ticker.db"
    assert s.clock_zone_label == "GMT"


def test_env_overrides_file_which_overrides_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text('port = 9000\nsite_name = "File News"\ntimezone = "Europe/London"\n')
    s = load_settings(cfg, environ={"TICKER_PORT": "9100"})
    assert (s.port, s.site_name, s.timezone) == (9100, "File News", "Europe/London")
    s2 = load_settings(environ={"TICKER_CONFIG": str(cfg)})
    assert s2.port == 9000
    assert load_settings(cfg, environ={}, port=1234).port == 1234  # CLI flags win over all


def test_list_settings_accept_comma_separated_env_values() -> None:
    s = load_settings(environ={"TICKER_PUSH_ALLOWED_HOSTS": "a.example, http://127.0.0.1:9"})
    assert s.push_allowed_hosts == ("a.example", "http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"TICKER_PORT": "eighty"}, "port"),
        ({"TICKER_PORT": "70000"}, "port"),
        ({"TICKER_TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"TICKER_VAPID_SUBJECT": "newsdesk@example.com"}, "vapid_subject"),
        ({"TICKER_MODE": "staging"}, "mode"),
        ({"TICKER_PUSH_TTL": "0"}, "push_ttl"),
        ({"TICKER_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"}, "trusted_proxies"),
        ({"TICKER_WS_WRITER_THREADS": "-1"}, "ws_writer_threads"),
        ({"TICKER_WS_WRITER_MIN_SUBSCRIBERS": "0"}, "ws_writer_min_subscribers"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment):
        load_settings(environ=env)


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("bogus = 1\n", "unknown setting"),
        ("port = \n", "config file"),
        ('[[sources]]\nname = "x"\nurl = "ftp://a"\nformat = "json"\n', "url"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "xml"\n', "format"),
        ('[[sources]]\nname = "x"\nurl = "http://a"\nformat = "json"\n', "fields"),
        ('[[sources]]\nname = "Bad Name"\nurl = "http://a"\nformat = "jhu-csse-daily"\n', "name"),
    ],
)
def test_bad_config_files_are_refused_with_a_reason(
    tmp_path: Path, toml: str, fragment: str
) -> None:
    cfg = tmp_path / "t.toml"
    cfg.write_text(toml)
    with pytest.raises(SettingsError, match=fragment):
        load_settings(cfg, environ={})


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_secrets_never_show_in_repr_or_the_redacted_view() -> None:
    s = load_settings(environ={"TICKER_WEBHOOK_SECRET": "hunter2", "TICKER_API_TOKEN": "tk_x"})
    assert s.webhook_secret.reveal() == "hunter2"
    for text in (repr(s), str(s.redacted()), str(s.webhook_secret)):
        assert "hunter2" not in text and "tk_x" not in text
    assert isinstance(s.api_token, Secret)


def test_example_config_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parent.parent / "ticker.example.toml"
    s = load_settings(example, environ={})
    assert [src.name for src in s.sources] == ["covid19"]
    assert s.sources[0].attribution == "JHU CSSE"
