from domain.messages import Outgoing
from handlers.render import render
from locales import catalog_for, gettext
from locales.catalog import problems


def test_catalogs_cover_every_key_in_both_languages() -> None:
    assert problems() == []


def test_locale_resolution() -> None:
    assert catalog_for("zh-hans") == "zh_Hans"
    assert catalog_for("en-US") == "en"
    assert catalog_for("fr", "zh_Hans_CN") == "zh_Hans"
    assert catalog_for(None, "en") == "en"


def test_render_translates_parameters_and_keeps_user_text() -> None:
    message = Outgoing("intake.ask_description", {"risk": {"$risk": "illness"}, "limit": 1000})
    zh, _ = render(message, "zh_Hans")
    en, _ = render(message, "en")
    assert "因病" in zh and "Illness" in en
    text, _ = render(Outgoing("intake.noted", {"value": "{odd} braces"}), "en")
    assert text == "Selected: {odd} braces"
    assert gettext("en", "no.such_key") == "no.such_key"


def test_messages_pot_is_current() -> None:
    from babel.messages.pofile import read_po

    from locales import HERE
    from locales.catalog import keys_in_code

    with (HERE / "messages.pot").open("rb") as handle:
        in_pot = {m.id for m in read_po(handle) if m.id}
    assert in_pot == keys_in_code(), "run `python -m locales.catalog pot`"
