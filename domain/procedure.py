"""The procedure of identification as data: every allowed move, who may make it; nothing else.

submitted -acknowledge-> acknowledged -visit-> visited -propose-> proposed -publicize->
publicizing -close_notice-> township_review -approve-> approved -enter-> entered;
visited -reject-> not_eligible -object-> objected -uphold-> closed | -reopen-> acknowledged;
submitted -withdraw-> withdrawn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.model import DeclarationStatus as S


class Party(enum.StrEnum):
    """Who may make a move."""

    HANDLER = "handler"  # a person the case was routed to (the village's cadres, or the township)
    OWNER = "owner"  # the one who acknowledged it ("谁签收谁负责"), or whoever it was handed to
    TOWNSHIP = "township"  # township staff of the village's township
    COUNTY = "county"  # the county of the village's township (县级审定); its staff where it has none
    HOUSEHOLD = "household"  # the declarant


@dataclass(frozen=True)
class Move:
    source: S
    action: str
    target: S
    party: Party


MOVES: tuple[Move, ...] = (
    Move(S.SUBMITTED, "acknowledge", S.ACKNOWLEDGED, Party.HANDLER),
    Move(S.SUBMITTED, "withdraw", S.WITHDRAWN, Party.HOUSEHOLD),
    Move(S.ACKNOWLEDGED, "visit", S.VISITED, Party.OWNER),
    Move(S.VISITED, "propose", S.PROPOSED, Party.OWNER),
    Move(S.VISITED, "reject", S.NOT_ELIGIBLE, Party.OWNER),
    Move(S.PROPOSED, "publicize", S.PUBLICIZING, Party.OWNER),
    Move(S.PUBLICIZING, "close_notice", S.TOWNSHIP_REVIEW, Party.OWNER),
    Move(S.TOWNSHIP_REVIEW, "approve", S.APPROVED, Party.TOWNSHIP),
    Move(S.APPROVED, "enter", S.ENTERED, Party.COUNTY),
    Move(S.NOT_ELIGIBLE, "object", S.OBJECTED, Party.HOUSEHOLD),
    Move(S.OBJECTED, "uphold", S.CLOSED, Party.TOWNSHIP),
    Move(S.OBJECTED, "reopen", S.ACKNOWLEDGED, Party.TOWNSHIP),
)
_BY_KEY = {(m.source, m.action): m for m in MOVES}
ACTIONS = frozenset(m.action for m in MOVES)
# What the case log records: every move, and what happens around them.
EVENT_KINDS = ACTIONS | {
    "submitted", "assigned", "withdrawn", "info_added", "green_channel", "handed_over",
    "id_revealed",  # township staff saw the full ID number on the console
}  # fmt: skip


class MoveRefused(Exception):
    """The action is not allowed from the declaration's current status."""


def move(source: S, action: str) -> Move:
    """The move `action` makes from `source`, or MoveRefused."""
    try:
        return _BY_KEY[(source, action)]
    except KeyError:
        raise MoveRefused(f"{action} from {source}") from None


def actions_from(source: S) -> list[Move]:
    """The moves possible from a status, in table order."""
    return [m for m in MOVES if m.source is source]


# The step whose deadline runs while a declaration is in a status (see the policy's limits).
DUE_STEP: dict[S, str] = {
    S.SUBMITTED: "acknowledge",
    S.ACKNOWLEDGED: "visit",
    S.VISITED: "feedback",
    S.PROPOSED: "whole",
    S.PUBLICIZING: "public_notice",
    S.TOWNSHIP_REVIEW: "whole",
    S.APPROVED: "whole",
    S.OBJECTED: "feedback",
}
