"""``ticker``: one entry point, a subcommand per job. Each module adds its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence

import subscribers.cli
from subscribers.settings import PushSettings
from ticker import __version__
from ticker.cli import feed, feeds, serve, tokens, users
from ticker.cli.errors import CliError, Unreachable
from ticker.settings import Part, Settings, SettingsError, load_settings
from ticker.storage import StorageError

Command = Callable[[argparse.Namespace, Settings], int]

# The platform's commands, then those of the parts plugged in (Web Push: vapid, alerts).
MODULES = [serve, feed, tokens, users, feeds, subscribers.cli]
# The parts' settings sections: every command sees (and checks) TICKER_PUSH_* and push keys.
PARTS: tuple[type[Part], ...] = (PushSettings,)

__all__ = ["CliError", "build_parser", "main"]

CONFIG_HELP = "TOML settings file (default: $TICKER_CONFIG; env TICKER_* wins)"


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield sub
                yield from _subparsers(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ticker",
        description="Real-time backend for newsrooms: live widgets and Web Push alerts.",
    )
    parser.add_argument("--version", action="version", version=f"ticker {__version__}")
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in MODULES:
        module.register(sub)
    # ``ticker serve --config F`` as well as ``ticker --config F serve``. SUPPRESS: a
    # subcommand without the flag must not reset what was given before it.
    for subparser in _subparsers(parser):
        subparser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                               help=CONFIG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config, parts=PARTS,
                                 **getattr(args, "overrides", lambda a: {})(args))
        for notice in settings.notices:
            print(f"ticker: warning: {notice}", file=sys.stderr)
        run: Command = args.run
        return run(args, settings)
    except Unreachable as exc:
        print(f"ticker: error: {exc}", file=sys.stderr)
        return 1
    except (SettingsError, CliError, StorageError, ValueError) as exc:
        print(f"ticker: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a local failure nobody translated: still one line, no traceback
        print(f"ticker: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
