"""Data-ticker sources: documents polled on a schedule and published on ``data:<name>``.

``parse`` reads documents and decides what to publish (no I/O); ``poller`` fetches and
schedules.
"""
