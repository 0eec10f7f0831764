"""``ticker``: one entry point, a subcommand per job. Each module adds its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import aiohttp

import subscribers.cli
from ticker import __version__
from ticker.cli import feed, serve, tokens
from ticker.settings import Settings, SettingsError, load_settings

Command = Callable[[argparse.Namespace, Settings], int]

# The platform's commands, then those of the parts plugged in (Web Push: vapid, alerts).
MODULES = [serve, feed, tokens, subscribers.cli]


class CliError(Exception):
    """A one-line reason to stop with a non-zero exit."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticker",
        description="Real-time backend for newsrooms: live widgets and Web Push alerts.",
    )
    parser.add_argument("--version", action="version", version=f"ticker {__version__}")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML settings file (default: $TICKER_CONFIG; env TICKER_* wins)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, **getattr(args, "overrides", lambda a: {})(args))
        run: Command = args.run
        return run(args, settings)
    except (SettingsError, CliError, ValueError) as exc:
        print(f"ticker: error: {exc}", file=sys.stderr)
        return 2
    except (aiohttp.ClientError, OSError) as exc:
        print(f"ticker: error: cannot reach the server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
