"""The offline sample on ``data:covid19``, so a fresh ``ticker serve`` shows a working
data ticker: README's embed names ``data:covid19``, and without any ``[[sources]]`` a
newcomer would otherwise see ``unknown_channel`` and an empty widget.

The figures are the JHU CSSE global totals of 18 July 2021: the daily report
``07-18-2021.csv`` summed by :func:`ticker.sources.parse.parse_jhu_csse_daily`, in the
version JHU published on 19 July 2021 (the day of the seed page; JHU revised some rows
later, e.g. Afghanistan's, so a fetch of the file today sums a little differently). The
payload says it is a sample (``sample``, ``note``) and links its origin; it is published
once at start with the report's own time, and nothing is ever fetched.

Only in demo mode, and only when no source named ``covid19`` is configured: a configured
source always wins, and production never shows figures nobody asked for.
"""

from __future__ import annotations

from typing import Any

from ticker.settings import Settings

NAME = "covid19"
URL = ("https://github.com/CSSEGISandData/COVID-19/blob/master/csse_covid_19_data/"
       "csse_covid_19_daily_reports/07-18-2021.csv")
# The latest Last_Update in that report (04:21:24 UTC on the 19th, for the 18th's totals).
AS_OF = "2021-07-19T04:21:24Z"
VALUES = {"confirmed": 190_417_528, "recovered": 125_377_069, "deaths": 4_088_864}


def enabled(settings: Settings) -> bool:
    return settings.server.mode == "demo" and all(s.name != NAME for s in settings.sources)


def payload() -> dict[str, Any]:
    """The ``data:covid19`` message: the usual data-ticker shape, plus what marks a sample."""
    return {
        "source": NAME,
        "values": dict(VALUES),
        "as_of": AS_OF,
        "attribution": "JHU CSSE",
        "stale": False,
        "sample": True,
        "note": "Sample data: global totals of 18 July 2021, not live",
        "url": URL,
    }
