"""What /healthz says about data sources: degraded, naming each failing one and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ticker.settings import Settings, SourceSettings
from ticker.sources import sample
from ticker.sources.parse import parse_jhu_csse_daily, unavailable_payload
from ticker.sources.state import SourceState, sources_health

T = datetime(2021, 7, 19, 14, 40, tzinfo=UTC)
GOOD = {"source": "s", "values": {"n": 1}, "as_of": "2021-07-19T04:21:24Z",
        "attribution": "X", "stale": False}


def state(payload: dict[str, Any] | None = None, error: str | None = None,
          fetched: bool = True) -> SourceState:
    return SourceState("s", payload=payload, last_fetch_at=T if fetched else None,
                       last_error=error)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (state(fetched=False), None),  # not tried yet
        (state(GOOD), None),
        (state({**GOOD, "stale": True}, "timeout: no complete answer within 10 s"),
         "last fetch failed: timeout: no complete answer within 10 s"),
        (state(unavailable_payload("s", "X"), "http_status: HTTP 503"),
         "never fetched successfully: http_status: HTTP 503"),
        (state(None, "network: ClientConnectorError"),
         "never fetched successfully: network: ClientConnectorError"),
        (state({**GOOD, "stale": True}), "values are stale"),
        (state(None), "never fetched successfully"),
    ],
    ids=["not-tried", "fine", "last-fetch-failed", "placeholder-only", "nothing-published",
         "stale-without-error", "no-value"],
)
def test_a_source_is_failing_when_its_fetch_failed_or_it_has_no_fresh_value(
        source: SourceState, reason: str | None) -> None:
    assert source.failure() == reason


def test_health_is_degraded_and_names_each_failing_source() -> None:
    states = {"b": SourceState("b", payload=GOOD, last_fetch_at=T),
              "a": SourceState("a", last_fetch_at=T, last_error="malformed: line 3")}
    assert sources_health(states) == {
        "status": "degraded", "configured": 2,
        "failing": [{"name": "a", "reason": "never fetched successfully: malformed: line 3"}]}
    assert sources_health({"b": states["b"]}, "a sample") == {
        "status": "ok", "configured": 1, "sample": "a sample"}


def test_the_sample_runs_in_demo_mode_unless_a_covid19_source_is_configured() -> None:
    configured = (SourceSettings(name="covid19", url="https://x/y.csv", format="jhu-csse-daily"),)
    other = (SourceSettings(name="ftse", url="https://x/y.json", format="json",
                            fields={"ftse": "a.b"}),)
    assert sample.enabled(Settings())
    assert sample.enabled(Settings(sources=other))
    assert not sample.enabled(Settings(sources=configured))
    assert not sample.enabled(Settings(mode="production"))


def test_the_sample_is_a_data_ticker_payload_marked_as_a_sample() -> None:
    data = sample.payload()
    assert {k: data[k] for k in ("source", "attribution", "stale", "as_of")} == {
        "source": "covid19", "attribution": "JHU CSSE", "stale": False,
        "as_of": "2021-07-19T04:21:24Z"}
    assert data["sample"] is True and "18 July 2021" in data["note"]
    assert data["url"].endswith("/07-18-2021.csv")
    assert list(data["values"]) == ["confirmed", "recovered", "deaths"]
    # The same reading as the parser gives a report with those totals and that time.
    row = (",,,World,2021-07-19 04:21:24,0,0,{confirmed},{deaths},{recovered},0,World,,"
           .format(**sample.VALUES))
    header = ("FIPS,Admin2,Province_State,Country_Region,Last_Update,Lat,Long_,Confirmed,"
              "Deaths,Recovered,Active,Combined_Key,Incident_Rate,Case_Fatality_Ratio")
    reading = parse_jhu_csse_daily(f"{header}\n{row}\n".encode())
    assert (reading.values, reading.as_of) == (data["values"], data["as_of"])
