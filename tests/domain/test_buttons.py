"""Typed button data: every registered class packs within Telegram's 64 bytes and reads back; data
that is not one of ours is refused with ButtonError, never another exception."""

from __future__ import annotations

import enum
from dataclasses import fields
from datetime import date
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import buttons as b


def _values(kind: Any) -> st.SearchStrategy[Any]:
    """In-bound values of a field, its extremes included."""
    base, bound = kind, None
    if get_origin(kind) is Annotated:
        base, bound = get_args(kind)[0], get_args(kind)[1]
    if get_origin(base) is Literal:
        return st.sampled_from(get_args(base))
    if isinstance(base, type) and issubclass(base, enum.Enum):
        return st.sampled_from(list(base))
    if base is int:
        assert isinstance(bound, b.Range)
        return st.integers(bound.low, bound.high)
    if base is date:
        return st.dates(b.FIRST_DAY, b.LAST_DAY)
    assert isinstance(bound, b.Pattern)
    return st.from_regex(bound.regex, fullmatch=True).filter(lambda s: ":" not in s)


@st.composite
def buttons(draw: st.DrawFn) -> b.Button:
    cls = draw(st.sampled_from(sorted(b.REGISTRY.values(), key=lambda c: c.prefix)))
    hints = get_type_hints(cls, include_extras=True)
    return cls(**{f.name: draw(_values(hints[f.name])) for f in fields(cls)})  # type: ignore[arg-type]


@settings(max_examples=400)
@given(buttons())
def test_every_button_packs_within_64_bytes_and_reads_back(button: b.Button) -> None:
    data = button.pack()
    assert len(data.encode()) <= b.MAX_BYTES
    assert b.parse(data) == button
    assert type(button).unpack(data) == button


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda raw: raw.decode("latin-1"))))
def test_anything_else_is_refused_with_button_error(data: str) -> None:
    try:
        button = b.parse(data)
    except b.ButtonError:
        return
    assert button.pack() == data  # it parsed: then it is exactly one of ours


@pytest.mark.parametrize(
    "data",
    [
        "ack:1" + "0" * 30,  # a 30-digit id
        "ack:0",  # ids start at 1
        "ack:-5",
        "ack:+5",
        "ack: 5",
        "ack:٥",  # an Arabic-Indic digit, which int() would take
        "ack:2147483648",  # past a PostgreSQL integer
        "ack:",
        "ack",
        "ack:1:2",
        "hh:1:7",  # a household of 7 from a button offering 1 to 6
        "vday:1:2",
        "verdict:1:maybe",
        "lang:fr",
        "rfill:1:20261301:1",  # no 13th month
        "rfill:1:99991231:1",  # out of the bounds of a report period
        "cvil:1:QS01;DROP",
        "nope:1",
        "",
        "a" * 65,
    ],
)
def test_malformed_data_is_refused(data: str) -> None:
    with pytest.raises(b.ButtonError):
        b.parse(data)


def test_a_value_out_of_bounds_is_a_bug_at_pack_time() -> None:
    with pytest.raises(b.ButtonError):
        b.Acknowledge(0).pack()
    with pytest.raises(b.ButtonError):
        b.HouseholdSize(1, 9).pack()


def test_unpack_refuses_another_kind_of_button() -> None:
    with pytest.raises(b.ButtonError):
        b.Acknowledge.unpack(b.OpenTask(3).pack())


def test_prefixes_are_unique_and_short() -> None:
    with pytest.raises(TypeError):

        class Twice(b.Button, prefix="ack"):  # already taken
            pass


def test_a_message_queued_before_typed_buttons_still_renders_its_buttons() -> None:
    from domain.messages import Action, Outgoing

    old = {"template": "case.new", "actions": [[["ack", "12", None]], [["step", "12:visit", "action.visit"]]]}
    message = Outgoing.from_json(old)
    assert [a.button for row in message.actions for a in row] == [b.Acknowledge(12), b.Step(12, "visit")]
    assert message.actions[0][0].label_or_default == "action.ack"
    again = Outgoing.from_json(message.to_json())
    assert again == message
    # Data a newer deployment no longer knows stays a string: shown, and refused when pressed.
    gone = Outgoing.from_json({"template": "x", "actions": [[["nvil", "3:done", "notice.villages_done"]]]})
    assert gone.actions[0][0] == Action("nvil:3:done", "notice.villages_done")
