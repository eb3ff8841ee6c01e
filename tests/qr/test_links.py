"""Where the printed code points: Telegram or the landing page, as the settings choose."""

from __future__ import annotations

import pytest

from bot.settings import ConfigError, Settings
from qr.links import flyer_link

PAYLOAD = "vQS01_7v0_zoargWjvzuJyw-BV"


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_without_public_url_the_code_opens_telegram() -> None:
    chosen = settings()
    assert chosen.qr_to_landing() is False
    link = flyer_link(PAYLOAD, bot_username="fanghui_bot", public_url=chosen.public_url, to_landing=False)
    assert link == f"https://t.me/fanghui_bot?start={PAYLOAD}"


def test_with_public_url_the_code_opens_the_landing_page_unless_told_otherwise() -> None:
    chosen = settings(public_url="https://fanghui.example.cn/")
    assert chosen.public_url == "https://fanghui.example.cn"
    assert chosen.qr_to_landing() is True
    link = flyer_link(PAYLOAD, bot_username="fanghui_bot", public_url=chosen.public_url, to_landing=True)
    assert link == f"https://fanghui.example.cn/q/{PAYLOAD}"
    assert settings(public_url="https://fanghui.example.cn", qr_target="telegram").qr_to_landing() is False


def test_a_landing_target_without_an_address_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        settings(qr_target="landing").qr_to_landing()
    with pytest.raises(ValueError):
        settings(public_url="fanghui.example.cn")
