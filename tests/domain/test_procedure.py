"""The procedure's state machine, table-driven: every listed move, and every other one refused."""

from datetime import date

import pytest

from domain import risk_types
from domain.cases import receipt_number
from domain.model import DeclarationStatus as S
from domain.procedure import ACTIONS, MOVES, MoveRefused, Party, actions_from, move

# (from, action, to, who) — the procedure as DOMAIN.md describes it.
EXPECTED = [
    (S.SUBMITTED, "acknowledge", S.ACKNOWLEDGED, Party.HANDLER),
    (S.SUBMITTED, "withdraw", S.WITHDRAWN, Party.HOUSEHOLD),
    (S.ACKNOWLEDGED, "visit", S.VISITED, Party.OWNER),
    (S.VISITED, "propose", S.PROPOSED, Party.OWNER),
    (S.VISITED, "reject", S.NOT_ELIGIBLE, Party.OWNER),
    (S.PROPOSED, "publicize", S.PUBLICIZING, Party.OWNER),
    (S.PUBLICIZING, "close_notice", S.TOWNSHIP_REVIEW, Party.OWNER),
    (S.TOWNSHIP_REVIEW, "approve", S.APPROVED, Party.TOWNSHIP),
    (S.APPROVED, "enter", S.ENTERED, Party.COUNTY),
    (S.NOT_ELIGIBLE, "object", S.OBJECTED, Party.HOUSEHOLD),
    (S.OBJECTED, "uphold", S.CLOSED, Party.TOWNSHIP),
    (S.OBJECTED, "reopen", S.ACKNOWLEDGED, Party.TOWNSHIP),
]


@pytest.mark.parametrize(("source", "action", "target", "party"), EXPECTED)
def test_listed_moves(source: S, action: str, target: S, party: Party) -> None:
    found = move(source, action)
    assert (found.target, found.party) == (target, party)


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_other_move_is_refused(source: S, action: str) -> None:
    if (source, action) in {(s, a) for s, a, _, _ in EXPECTED}:
        return
    with pytest.raises(MoveRefused):
        move(source, action)


def test_the_table_is_exactly_the_procedure() -> None:
    assert [(m.source, m.action, m.target, m.party) for m in MOVES] == EXPECTED


def test_final_states_have_no_way_out_but_objection() -> None:
    assert actions_from(S.ENTERED) == [] and actions_from(S.CLOSED) == [] and actions_from(S.WITHDRAWN) == []
    assert [m.action for m in actions_from(S.NOT_ELIGIBLE)] == ["object"]
    assert not S.ENTERED.open and not S.NOT_ELIGIBLE.open and S.OBJECTED.open and S.PUBLICIZING.open


def test_receipt_number_is_digits_and_dated() -> None:
    assert receipt_number(date(2026, 11, 23), 42) == "20261123000042"


def test_risk_types_are_data() -> None:
    codes = [r.code for r in risk_types.risk_types()]
    assert len(codes) == 13 and codes[0] == "illness" and codes[-1] == "other"
    assert risk_types.by_code("disaster").label("zh_Hans") == "因自然灾害"  # type: ignore[union-attr]
    assert risk_types.by_code("disaster").followups == ("when", "damage")  # type: ignore[union-attr]
    assert risk_types.match_label(" 因 病 ") is risk_types.by_code("illness")
    assert risk_types.match_label("illness") is risk_types.by_code("illness")
    assert risk_types.match_label("不知道") is None
