"""Reading data-ticker documents and deciding what to publish, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ticker.sources.parse import (
    MalformedDocument,
    Number,
    Reading,
    changed,
    channel_payload,
    on_failed_fetch,
    on_good_reading,
    on_not_modified,
    parse_document,
    parse_jhu_csse_daily,
    parse_json,
)

HEADER = ("FIPS,Admin2,Province_State,Country_Region,Last_Update,Lat,Long_,"
          "Confirmed,Deaths,Recovered,Active,Combined_Key,Incident_Rate,Case_Fatality_Ratio")


def jhu(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


ROW_A = ('1001,Autauga,Alabama,US,2021-07-19 04:20:45,32.53,-86.64,7269,113,,7156,'
         '"Autauga, Alabama, US",13010.9,1.55')
ROW_B = (',,,Afghanistan,2021-07-19 04:21:10,33.93,67.70,140224,6113,82586,51525,'
         'Afghanistan,360.2,4.36')
ROW_C = (',,Ontario,Canada,2021-07-18 23:59:00,51.25,-85.32,547705,9307,537367,1031,'
         '"Ontario, Canada",,1.70')
OLD_HEADER = "Province/State,Country/Region,Last Update,Confirmed,Deaths,Recovered"


@pytest.mark.parametrize(
    ("body", "values", "as_of"),
    [
        (jhu(ROW_A, ROW_B, ROW_C),
         {"confirmed": 7269 + 140224 + 547705, "deaths": 113 + 6113 + 9307,
          "recovered": 0 + 82586 + 537367},
         "2021-07-19T04:21:10Z"),
        # Early files: other column names, US-style dates, cells left empty.
        (jhu("Hubei,Mainland China,1/22/2020 17:00,444,17,28",
             "Guangdong,Mainland China,1/22/2020 17:00,26,,",
             ",Japan,1/22/2020 17:00,2,,", header=OLD_HEADER),
         {"confirmed": 472, "deaths": 17, "recovered": 28}, "2020-01-22T17:00:00Z"),
        (jhu("Hubei,China,3/8/20 5:31,67707,3070,45235",
             "Beijing,China,2020-02-01T19:43:03,212,1,9", header=OLD_HEADER),
         {"confirmed": 67919, "deaths": 3071, "recovered": 45244}, "2020-03-08T05:31:00Z"),
        # A byte-order mark before the header, CRLF line ends, padded header cells.
        (b"\xef\xbb\xbf" + jhu(ROW_B).replace(b"\n", b"\r\n").replace(b",Deaths,", b", Deaths ,"),
         {"confirmed": 140224, "deaths": 6113, "recovered": 82586}, "2021-07-19T04:21:10Z"),
        # Whole numbers written as floats are read; an empty Last_Update does not count.
        (jhu(",,,X,,0,0,12.0,1,2,9,X,,", ",,,Y,2021-01-02 03:04:05,0,0,1,0,0,1,Y,,"),
         {"confirmed": 13, "deaths": 1, "recovered": 2}, "2021-01-02T03:04:05Z"),
        (jhu(",,,X,,0,0,1,1,1,0,X,,"), {"confirmed": 1, "deaths": 1, "recovered": 1}, None),
    ],
    ids=["current-columns", "old-columns-empty-cells", "old-short-dates", "bom-crlf",
         "float-counts", "no-times"],
)
def test_jhu_daily_report_sums_confirmed_deaths_recovered(
    body: bytes, values: dict[str, Number], as_of: str | None
) -> None:
    reading = parse_jhu_csse_daily(body)
    assert reading == Reading(values, as_of)
    assert all(type(v) is int for v in reading.values.values())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty document"),
        (jhu(), "no data rows"),
        (jhu(ROW_A, header=HEADER.replace(",Deaths,", ",Dead,")), "missing column 'Deaths'"),
        (jhu(ROW_A, header=HEADER.replace("Last_Update", "Updated")),
         "missing column 'Last_Update'"),
        (jhu(ROW_A, header=HEADER.replace("Country_Region", "Nation")),
         "missing column 'Country_Region'"),
        (jhu(ROW_A, ROW_B + ",extra"), "line 3 has 15 fields, the header has 14"),
        (jhu(ROW_A, ",,,Short,2021-07-19 04:21:10"), "line 3 has 5 fields"),
        (jhu(ROW_A.replace(",7269,", ",7k,")), "line 2: Confirmed is not a whole number: '7k'"),
        (jhu(ROW_B.replace(",6113,", ",61.5,")), "Deaths is not a whole number: '61.5'"),
        (jhu(ROW_B.replace(",82586,", ",nan,")), "Recovered is not a whole number: 'nan'"),
        (jhu(ROW_B.replace("2021-07-19 04:21:10", "yesterday")),
         "Last_Update is not a time: 'yesterday'"),
        (jhu('1,"unterminated,Alabama,US'), "line"),
        (b"\xff\xfeC\x00o\x00", "not UTF-8"),
        (b"<html><body>Rate limited</body></html>\n", "missing column"),
    ],
    ids=["empty", "header-only", "missing-deaths", "missing-last-update", "missing-country",
         "row-too-long", "row-too-short", "non-numeric", "fractional", "nan", "bad-time",
         "bad-quoting", "utf16", "html-error-page"],
)
def test_jhu_daily_report_is_refused_whole_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedDocument) as info:
        parse_jhu_csse_daily(body)
    assert reason in str(info.value)


DOC = (b'{"updated": "2021-07-19T06:00:00+02:00", "ms": 1626667200000,'
       b' "data": [{"confirmed": 10, "rate": 1.5}, {"confirmed": 20, "flag": true}],'
       b' "totals": {"deaths": 3, "name": "x", "none": null}}')


@pytest.mark.parametrize(
    ("fields", "as_of_path", "values", "as_of"),
    [
        ({"first": "data.0.confirmed", "second": "data.1.confirmed", "deaths": "totals.deaths"},
         "", {"first": 10, "second": 20, "deaths": 3}, None),
        ({"rate": "data.0.rate", "last": "data.-1.confirmed"}, "updated",
         {"rate": 1.5, "last": 20}, "2021-07-19T04:00:00Z"),
        ({"deaths": "totals.deaths"}, "ms", {"deaths": 3}, "2021-07-19T04:00:00Z"),
    ],
    ids=["dotted-paths-with-list-index", "float-negative-index-iso-time", "epoch-ms-time"],
)
def test_json_picks_numbers_by_dotted_path(
    fields: dict[str, str], as_of_path: str, values: dict[str, Any], as_of: str | None
) -> None:
    reading = parse_json(DOC, fields, as_of_path)
    assert reading == Reading(values, as_of)
    # ints stay ints: 10 and 10.0 compare equal, so the types are checked on their own.
    assert [type(v) for v in reading.values.values()] == [type(v) for v in values.values()]


@pytest.mark.parametrize(
    ("body", "fields", "as_of_path", "reason"),
    [
        (DOC, {"x": "totals.missing"}, "", "'totals.missing': totals has no key 'missing'"),
        (DOC, {"x": "data.5.confirmed"}, "", "'data.5.confirmed': data has no item 5"),
        (DOC, {"x": "data.first"}, "", "data is a list, 'first' is not an index"),
        (DOC, {"x": "totals.deaths.value"}, "", "totals.deaths is 3, not an object or list"),
        (DOC, {"x": "totals.name"}, "", "'totals.name' is not a number: \"x\""),
        (DOC, {"x": "data.1.flag"}, "", "'data.1.flag' is not a number: true"),
        (DOC, {"x": "totals.none"}, "", "is not a number: null"),
        (DOC, {"x": "totals"}, "", "'totals' is not a number"),
        (DOC, {"x": "totals.deaths"}, "totals.name", "'totals.name' is not a time"),
        (DOC, {}, "", "no fields"),
        (b'{"a": NaN}', {"x": "a"}, "", "NaN is not a number JSON allows"),
        (b'{"a": 1', {"x": "a"}, "", "not JSON"),
        (b"\xef\xbb\xbf[1, 2]", {"x": "a"}, "", "the document is a list"),
    ],
    ids=["missing-key", "missing-index", "index-not-a-number", "through-a-number", "string",
         "boolean", "null", "object", "bad-time", "no-fields", "nan", "truncated", "bom-list"],
)
def test_json_is_refused_with_a_reason(
    body: bytes, fields: dict[str, str], as_of_path: str, reason: str
) -> None:
    with pytest.raises(MalformedDocument) as info:
        parse_json(body, fields, as_of_path)
    assert reason in str(info.value)


def test_document_format_is_chosen_by_name() -> None:
    assert parse_document("json", b'{"n": 1}', {"n": "n"}).values == {"n": 1}
    assert parse_document("jhu-csse-daily", jhu(ROW_B)).values["deaths"] == 6113
    with pytest.raises(MalformedDocument, match="unknown format"):
        parse_document("xml", b"<a/>")


FETCHED = datetime(2021, 7, 19, 12, 0, 30, tzinfo=UTC)


def test_payload_has_the_contract_shape_and_falls_back_to_the_fetch_time() -> None:
    with_time = channel_payload("covid19", "JHU CSSE", Reading({"confirmed": 1},
                                "2021-07-19T04:21:10Z"), FETCHED)
    assert with_time == {"source": "covid19", "values": {"confirmed": 1},
                         "as_of": "2021-07-19T04:21:10Z", "attribution": "JHU CSSE",
                         "stale": False}
    assert channel_payload("m", "", Reading({"n": 2}), FETCHED)["as_of"] == "2021-07-19T12:00:30Z"


def payload(values: dict[str, Any], stale: bool = False, as_of: str = "t1") -> dict[str, Any]:
    return {"source": "s", "values": values, "as_of": as_of, "attribution": "", "stale": stale}


@pytest.mark.parametrize(
    ("previous", "new", "is_change"),
    [
        (None, payload({"n": 1}), True),
        (payload({"n": 1}), payload({"n": 1}), False),
        (payload({"n": 1}), payload({"n": 1}, as_of="t2"), False),  # only the time moved
        (payload({"n": 1}), payload({"n": 2}), True),
        (payload({"n": 1}), payload({"n": 1, "m": 0}), True),
        (payload({"n": 1}, stale=True), payload({"n": 1}), True),  # fresh again
    ],
)
def test_a_value_is_published_only_when_values_or_staleness_change(
    previous: dict[str, Any] | None, new: dict[str, Any], is_change: bool
) -> None:
    assert changed(previous, new) is is_change
    assert on_good_reading(previous, new) == (new if is_change else None)


def test_a_failure_marks_the_last_good_value_stale_exactly_once() -> None:
    good = payload({"n": 1})
    assert on_failed_fetch(None) is None  # nothing good to keep: publish nothing
    stale = on_failed_fetch(good)
    assert stale == payload({"n": 1}, stale=True)
    assert good["stale"] is False  # the previous payload is not modified
    assert on_failed_fetch(stale) is None


def test_not_modified_makes_a_stale_value_fresh_and_is_otherwise_silent() -> None:
    assert on_not_modified(None) is None
    assert on_not_modified(payload({"n": 1})) is None
    assert on_not_modified(payload({"n": 1}, stale=True)) == payload({"n": 1})
