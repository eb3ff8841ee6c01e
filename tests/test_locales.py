from domain.messages import Outgoing
from handlers.keyboards import render
from locales import catalog_for, gettext
from locales.catalog import problems
from locales.render import value


def test_catalogs_cover_every_key_in_both_languages() -> None:
    assert problems() == []


def test_locale_resolution() -> None:
    assert catalog_for("zh-hans") == "zh_Hans"
    assert catalog_for("en-US") == "en"
    assert catalog_for("fr", "zh_Hans_CN") == "zh_Hans"
    assert catalog_for(None, "en") == "en"


def test_render_translates_parameters_and_keeps_user_text() -> None:
    message = Outgoing("followup.cost", {"risk": {"$risk": "illness"}}).led_by("validate.amount")
    zh, _ = render(message, "zh_Hans")
    en, _ = render(message, "en")
    assert zh.startswith("没看懂这个金额") and "因病" in zh
    assert en.startswith("That amount is not clear") and "Illness" in en
    text, _ = render(Outgoing("intake.noted", {"value": "{odd} braces"}), "en")
    assert text == "Selected: {odd} braces"
    assert gettext("en", "no.such_key") == "no.such_key"


def test_money_dates_and_lists_follow_the_locale() -> None:
    assert value({"$money": 35000}, "zh_Hans") == "¥35,000"
    assert value({"$money": 35000}, "en") == "CN¥35,000"
    assert value({"$date": "2026-10-01"}, "zh_Hans") == "2026年10月1日"
    assert value({"$date": "2026-10-01"}, "en") == "October 1, 2026"
    assert value({"$risks": ["illness", "housing"]}, "zh_Hans") == "因病、住房安全问题"
    assert value({"$risk": "water", "$checked": True}, "en") == "✅ Unsafe drinking water"
    nested = {"$t": "declarant.family", "$with": {"relation": {"$t": "relation.child"}}}
    assert value(nested, "zh_Hans") == "家属代报（子女）"


def test_an_empty_optional_line_is_left_out() -> None:
    params = {
        k: "x"
        for k in (
            "village",
            "name",
            "declarant",
            "phone",
            "id_number",
            "household",
            "risks",
            "description",
            "photos",
        )
    }
    with_line, _ = render(Outgoing("intake.summary", {**params, "followups": "因病花费：¥3"}), "zh_Hans")
    without, _ = render(Outgoing("intake.summary", {**params, "followups": ""}), "zh_Hans")
    assert "因病花费" in with_line and "\n\n\n" not in without
    assert len(without.splitlines()) == len(with_line.splitlines()) - 1


def test_messages_pot_is_current() -> None:
    from babel.messages.pofile import read_po

    from locales import HERE
    from locales.catalog import keys_in_code

    with (HERE / "messages.pot").open("rb") as handle:
        in_pot = {m.id for m in read_po(handle) if m.id}
    assert in_pot == keys_in_code(), "run `python -m locales.catalog pot`"
