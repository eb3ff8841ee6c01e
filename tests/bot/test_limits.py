"""The splitter: every part fits Telegram's limits (in UTF-16 units), nothing is lost, the order
is kept, and a message is cut at line breaks before spaces before anywhere."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.limits import (
    CAPTION_LIMIT,
    PART_TEMPLATE,
    TEXT_LIMIT,
    clip,
    split_message,
    split_text,
    splitter,
    utf16_len,
)
from domain.messages import Action, Outgoing
from locales.render import text_of

# Plain letters, Chinese (one unit), emoji (two units), marks and joiners, spaces and breaks.
PIECES = st.sampled_from(
    ["a", "b", "汉", "字", "😀", "👍", "\u0301", "\u200d", "\ufe0f", " ", "\u3000", "\n", "\t"]
)
TEXTS = st.lists(PIECES, max_size=300).map("".join)
LIMITS = st.integers(min_value=2, max_value=60)


def squeezed(text: str) -> str:
    return re.sub(r"\s", "", text)


@given(TEXTS, LIMITS)
def test_every_part_fits_and_together_they_are_the_text_in_order(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    assert all(utf16_len(part) <= limit for part in parts)
    assert squeezed("".join(parts)) == squeezed(text)  # only break characters are dropped
    if text.strip():
        assert all(part.strip() for part in parts)  # Telegram refuses a blank text


LINE = st.lists(st.sampled_from(["a", "汉", "😀", " "]), min_size=1, max_size=20).map("".join)
LINES = st.lists(LINE.filter(str.strip), max_size=40)  # each at most 40 units


@given(LINES, st.integers(min_value=40, max_value=120))
def test_lines_that_fit_are_never_cut(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    parts = split_text(text, limit)
    assert "\n".join(parts) == text  # cut only at line breaks, each dropped once
    assert all(utf16_len(part) <= limit for part in parts)


WORDS = st.lists(st.sampled_from(["ab", "汉字", "😀😀", "word"]), min_size=1, max_size=80)


@given(WORDS, st.integers(min_value=8, max_value=40))
def test_a_long_line_is_cut_between_words(words: list[str], limit: int) -> None:
    text = " ".join(words)
    parts = split_text(text, limit)
    assert " ".join(parts) == text
    assert all(utf16_len(part) <= limit for part in parts)


def test_telegram_counts_utf16_units_and_a_part_uses_the_limit_to_the_full() -> None:
    assert utf16_len("汉字") == 2 and utf16_len("😀") == 2
    parts = split_text("😀" * 3000)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert split_text("汉" * 4096) == ["汉" * 4096]
    assert split_text("x" * 4097) == ["x" * 4096, "x"]


def test_a_character_and_its_marks_stay_together() -> None:
    family = "👨\u200d👩\u200d👧"  # one picture, five code points
    parts = split_text("a" * 4094 + family)
    assert parts == ["a" * 4094, family]


@settings(max_examples=30)
@given(st.lists(st.text(alphabet="汉字a😀 ", min_size=1, max_size=300), min_size=1, max_size=60))
def test_a_long_message_becomes_parts_with_the_buttons_on_the_last(lines: list[str]) -> None:
    body = "\n".join(f"#{n} {line}" for n, line in enumerate(lines))
    buttons = ((Action("ack"),),)
    message = Outgoing("ledger.item", {"line": body}, actions=buttons)
    parts = split_message(message, "zh_Hans")
    rendered = [text_of(part, "zh_Hans") for part in parts]
    assert all(utf16_len(text) <= TEXT_LIMIT for text in rendered)
    assert squeezed("".join(rendered)) == squeezed(text_of(message, "zh_Hans"))
    if utf16_len(text_of(message, "zh_Hans")) <= TEXT_LIMIT:
        assert parts == [message]  # a message that fits is queued as it is, rendered when sent
    else:
        assert all(part.template == PART_TEMPLATE for part in parts)
        assert [part.actions for part in parts] == [()] * (len(parts) - 1) + [buttons]


def test_a_caption_too_long_is_cut_and_the_rest_follows_as_text() -> None:
    photo = {"kind": "photo", "file_id": "F1"}
    body = "\n".join(f"第{n}行：" + "情况说明" * 40 for n in range(60))
    message = Outgoing("ledger.item", {"line": body}, keyboard="menu", media=photo)
    parts = split_message(message, "zh_Hans")
    rendered = [text_of(part, "zh_Hans") for part in parts]
    assert parts[0].media == photo and utf16_len(rendered[0]) <= CAPTION_LIMIT
    assert all(part.media is None for part in parts[1:]) and len(parts) >= 3
    assert all(utf16_len(text) <= TEXT_LIMIT for text in rendered[1:])
    assert "\n".join(rendered) == body
    assert [part.keyboard for part in parts] == [None] * (len(parts) - 1) + ["menu"]
    short = Outgoing("ledger.item", {"line": "情况" * 512}, media=photo)
    assert split_message(short, "zh_Hans") == [short]


def test_the_splitter_renders_in_the_recipients_language() -> None:
    message = Outgoing("ledger.item", {"line": "x" * 5000}, lead="sender.a_farmer")
    split = splitter("zh_Hans")
    assert text_of(split(message, "en")[0], "zh_Hans").startswith("a farmer who declared")
    assert text_of(split(message, None)[0], "en").startswith("一位申报农户")


def test_clip_marks_what_it_cut() -> None:
    assert clip("short", 10) == "short"
    cut = clip("😀" * 600, CAPTION_LIMIT)
    assert utf16_len(cut) <= CAPTION_LIMIT and cut.endswith("…")
