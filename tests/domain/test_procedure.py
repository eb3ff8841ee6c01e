from datetime import date

import pytest

from domain import risk_types
from domain.cases import TRANSITIONS, TransitionRefused, next_status, receipt_number
from domain.model import DeclarationStatus as S

ACTIONS = {"acknowledge", "decide"}


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_only_listed_transitions_are_allowed(status: S, action: str) -> None:
    if (status, action) in TRANSITIONS:
        assert next_status(status, action) == TRANSITIONS[(status, action)]
    else:
        with pytest.raises(TransitionRefused):
            next_status(status, action)


def test_the_path_of_a_case() -> None:
    assert next_status(S.SUBMITTED, "acknowledge") is S.ACKNOWLEDGED
    assert next_status(S.ACKNOWLEDGED, "decide") is S.DECIDED


def test_receipt_number_is_digits_and_dated() -> None:
    assert receipt_number(date(2026, 11, 23), 42) == "20261123000042"


def test_risk_types_are_data() -> None:
    codes = [r.code for r in risk_types.risk_types()]
    assert len(codes) == 13 and codes[0] == "illness" and codes[-1] == "other"
    assert risk_types.by_code("disaster").label("zh_Hans") == "因自然灾害"  # type: ignore[union-attr]
    assert risk_types.match_label(" 因 病 ") is risk_types.by_code("illness")
    assert risk_types.match_label("illness") is risk_types.by_code("illness")
    assert risk_types.match_label("不知道") is None
