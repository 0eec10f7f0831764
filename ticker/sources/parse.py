"""Data-ticker documents and the values they yield, without I/O.

Two formats read a fetched body into a :class:`Reading` (numbers by output key, and the
time the document says they are from), or refuse the whole document with
:class:`MalformedDocument` whose message is the reason. Half a document is never used: a
sum over the rows that happened to parse would publish a wrong number that looks right.

The ``on_*`` functions decide what the ``data:<name>`` channel gets after each fetch:
a payload to publish, or ``None`` for "nothing changed, publish nothing".
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Number = int | float

JHU_CSSE_DAILY = "jhu-csse-daily"
JSON = "json"

# Output key -> the column names it has had over the life of the JHU CSSE daily reports
# (early files used "Country/Region" and "Last Update").
_JHU_COLUMNS: dict[str, tuple[str, ...]] = {
    "confirmed": ("Confirmed",),
    "deaths": ("Deaths",),
    "recovered": ("Recovered",),
    "country": ("Country_Region", "Country/Region"),
    "last_update": ("Last_Update", "Last Update"),
}
_JHU_SUMMED = ("confirmed", "deaths", "recovered")
# Every spelling of Last_Update seen in the archive that fromisoformat does not read.
_JHU_TIME_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%y %H:%M:%S")


class MalformedDocument(ValueError):
    """The document cannot be read in its format; ``str(exc)`` says why (for the logs)."""


@dataclass(frozen=True)
class Reading:
    """What one good document says: values by output key and, if it tells, when."""

    values: dict[str, Number]
    as_of: str | None = None  # ISO-8601 UTC ("2021-07-19T04:20:45Z")


def parse_document(fmt: str, body: bytes, fields: Mapping[str, str] | None = None,
                   as_of_path: str = "") -> Reading:
    if fmt == JHU_CSSE_DAILY:
        return parse_jhu_csse_daily(body)
    if fmt == JSON:
        return parse_json(body, fields or {}, as_of_path)
    raise MalformedDocument(f"unknown format {fmt!r}")


def _text(body: bytes) -> str:
    try:
        # utf-8-sig: spreadsheet exports (and some JHU files) start with a byte-order mark.
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedDocument(f"not UTF-8 (byte {exc.start})") from None


# --- JHU CSSE daily report ----------------------------------------------------------------


def parse_jhu_csse_daily(body: bytes) -> Reading:
    """Sum Confirmed, Deaths and Recovered over every row; ``as_of`` is the latest Last_Update."""
    reader = csv.reader(io.StringIO(_text(body), newline=""), strict=True)
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise MalformedDocument("empty document") from None
    except csv.Error as exc:
        raise MalformedDocument(f"line 1: {exc}") from None
    index = _jhu_columns(header)
    totals: dict[str, int] = dict.fromkeys(_JHU_SUMMED, 0)
    latest: datetime | None = None
    rows = 0
    try:
        for row in reader:
            if not row:  # a blank line, typically the last one
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise MalformedDocument(
                    f"line {line} has {len(row)} fields, the header has {len(header)}")
            rows += 1
            for key in _JHU_SUMMED:
                totals[key] += _count(row[index[key]], header[index[key]], line)
            stamp = _jhu_time(row[index["last_update"]], line)
            if stamp is not None and (latest is None or stamp > latest):
                latest = stamp
    except csv.Error as exc:
        raise MalformedDocument(f"line {reader.line_num}: {exc}") from None
    if rows == 0:
        raise MalformedDocument("no data rows")
    return Reading(dict(totals), iso_utc(latest) if latest else None)


def _jhu_columns(header: list[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for key, names in _JHU_COLUMNS.items():
        found = next((header.index(n) for n in names if n in header), None)
        if found is None:
            raise MalformedDocument(f"missing column {names[0]!r}")
        index[key] = found
    return index


def _count(cell: str, column: str, line: int) -> int:
    text = cell.strip()
    if not text:
        return 0  # JHU leaves a cell empty when a region does not report that number
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():  # NaN and infinities are not integers either
        raise MalformedDocument(f"line {line}: {column} is not a whole number: {text[:40]!r}")
    return int(number)


def _jhu_time(cell: str, line: int) -> datetime | None:
    text = cell.strip()
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    for fmt in _JHU_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise MalformedDocument(f"line {line}: Last_Update is not a time: {text[:40]!r}")


# --- JSON -----------------------------------------------------------------------------------


def parse_json(body: bytes, fields: Mapping[str, str], as_of_path: str = "") -> Reading:
    """Pick each output key's number by its dotted path (list items by index: ``data.0.n``)."""
    try:
        doc = json.loads(_text(body), parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise MalformedDocument(f"not JSON: {exc}") from None
    if not fields:
        raise MalformedDocument("no fields to read")
    values: dict[str, Number] = {}
    for key, path in fields.items():
        value = pick(doc, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MalformedDocument(f"{path!r} is not a number: {_preview(value)}")
        values[key] = value
    as_of = _json_time(pick(doc, as_of_path), as_of_path) if as_of_path else None
    return Reading(values, as_of)


def _refuse_constant(name: str) -> Any:
    raise MalformedDocument(f"not JSON: {name} is not a number JSON allows")


def pick(doc: Any, path: str) -> Any:
    """The value at a dotted path; a segment is a key in an object or an index into a list."""
    node = doc
    walked: list[str] = []
    for segment in path.split("."):
        where = ".".join(walked) or "the document"
        if isinstance(node, dict):
            if segment not in node:
                raise MalformedDocument(f"{path!r}: {where} has no key {segment!r}")
            node = node[segment]
        elif isinstance(node, list):
            try:
                node = node[int(segment)]
            except ValueError:
                raise MalformedDocument(f"{path!r}: {where} is a list, "
                                        f"{segment!r} is not an index") from None
            except IndexError:
                raise MalformedDocument(f"{path!r}: {where} has no item {segment}") from None
        else:
            raise MalformedDocument(f"{path!r}: {where} is {_preview(node)}, not an object or list")
        walked.append(segment)
    return node


def _json_time(value: Any, path: str) -> str:
    if isinstance(value, str):
        try:
            return iso_utc(as_utc(datetime.fromisoformat(value.strip())))
        except ValueError:
            pass
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        # Unix time; in milliseconds when it is too large to be seconds (past year 5000).
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return iso_utc(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            pass
    raise MalformedDocument(f"{path!r} is not a time: {_preview(value)}")


def _preview(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# --- times ------------------------------------------------------------------------------------


def as_utc(moment: datetime) -> datetime:
    """Naive times in these documents are UTC (JHU says so); aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- what the channel gets --------------------------------------------------------------------


def channel_payload(source: str, attribution: str, reading: Reading, fetched_at: datetime,
                    stale: bool = False) -> dict[str, Any]:
    """The ``data:<source>`` message; a document that does not say when falls back to the
    fetch time."""
    return {
        "source": source,
        "values": dict(reading.values),
        "as_of": reading.as_of or iso_utc(fetched_at),
        "attribution": attribution,
        "stale": stale,
    }


def changed(previous: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Worth publishing: the values or the stale flag differ. ``as_of`` alone does not
    count, or a source without its own time would republish the same numbers every poll."""
    return (previous is None or previous["values"] != new["values"]
            or previous["stale"] != new["stale"])


def on_good_reading(previous: Mapping[str, Any] | None,
                    new: dict[str, Any]) -> dict[str, Any] | None:
    return new if changed(previous, new) else None


def unavailable_payload(source: str, attribution: str) -> dict[str, Any]:
    """What ``data:<source>`` says before its first good document: no values, stale, and
    whose figures they will be, so a widget can say "unavailable" rather than nothing."""
    return {"source": source, "values": {}, "as_of": None, "attribution": attribution,
            "stale": True}


def on_failed_fetch(previous: Mapping[str, Any] | None,
                    first: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The last good value, marked stale once; nothing when it already is. With no value
    yet, ``first`` (an :func:`unavailable_payload`), if given, once."""
    if previous is None:
        return None if first is None else dict(first)
    if previous["stale"]:
        return None
    return {**previous, "stale": True}


def on_not_modified(previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """304: the document is the one the last good value came from, so it is fresh again."""
    if previous is None or not previous["stale"]:
        return None
    return {**previous, "stale": False}
