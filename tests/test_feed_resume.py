"""Releasing what a connection held while its replay was read: no loss, nothing twice."""

from __future__ import annotations

import pytest

from ticker.feed.channels import Message, Position
from ticker.feed.resume import released


def m(channel: str, epoch: str, offset: int) -> Message:
    return Message(channel, epoch, offset, {}, 0.0)


@pytest.mark.parametrize(
    ("held", "stands", "kept"),
    [
        ([], {"h": Position("e", 5)}, []),
        # live messages the replay already gave are dropped, later ones kept in order
        ([m("h", "e", 4), m("h", "e", 5), m("h", "e", 6), m("h", "e", 7)],
         {"h": Position("e", 5)}, [("h", 6), ("h", 7)]),
        # another channel's messages pass whatever their offsets
        ([m("c", "e", 1), m("h", "e", 5), m("c", "e", 2)], {"h": Position("e", 5)},
         [("c", 1), ("c", 2)]),
        # a new numbering (another epoch) is not covered by the replay
        ([m("h", "f", 1)], {"h": Position("e", 5)}, [("h", 1)]),
    ],
)
def test_held_messages_follow_the_replay_without_the_ones_it_covered(
    held: list[Message], stands: dict[str, Position], kept: list[tuple[str, int]]
) -> None:
    assert [(x.channel, x.offset) for x in released(held, stands)] == kept
