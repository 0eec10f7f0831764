"""Benchmarks for ticker: each module with a ``main`` is one command (see ``bench/README.md``)."""
