"""WEBHOOK_URL and WEBHOOK_SECRET: an https:// address (http:// only to this machine) and the
secret Telegram sends back with every update, required together; a bad value is one line."""

from __future__ import annotations

import pytest

from bot.settings import ConfigError, load

BASE = {"_env_file": None, "telegram_bot_token": "1:T"}


def test_a_webhook_needs_an_https_address_and_a_secret() -> None:
    chosen = load(**BASE, webhook_url="https://bot.example.cn/telegram", webhook_secret="a-Secret_0123")
    assert chosen.webhook_url == "https://bot.example.cn/telegram"
    assert chosen.webhook_secret is not None and chosen.webhook_secret.get_secret_value() == "a-Secret_0123"
    local = load(**BASE, webhook_url="http://127.0.0.1:8443/telegram", webhook_secret="s")
    assert local.webhook_url == "http://127.0.0.1:8443/telegram"
    assert load(**BASE, webhook_url="http://localhost/t", webhook_secret="s" * 256).webhook_url
    # Unset (or empty, as an empty line of .env gives): long polling.
    for empty in ({}, {"webhook_url": "", "webhook_secret": ""}):
        none = load(**BASE, **empty)
        assert none.webhook_url is None and none.webhook_secret is None


@pytest.mark.parametrize(
    "url",
    ["http://bot.example.cn/telegram", "ftp://bot.example.cn", "https://", "bot.example.cn", "https://a b"],
)
def test_a_webhook_address_telegram_cannot_use_is_one_clear_error(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(**BASE, webhook_url=url, webhook_secret="secret")
    message = str(refused.value)
    assert message.startswith("WEBHOOK_URL: not an https:// address") and "\n" not in message


def test_a_webhook_without_a_secret_says_how_to_make_one() -> None:
    for missing in ({}, {"webhook_secret": ""}):
        with pytest.raises(ConfigError) as refused:
            load(**BASE, webhook_url="https://bot.example.cn/telegram", **missing)
        message = str(refused.value)
        assert (
            message.startswith("WEBHOOK_SECRET: required when WEBHOOK_URL is set")
            and "token_urlsafe" in message
        )
        assert "\n" not in message


@pytest.mark.parametrize("secret", ["with space", "密钥", "a" * 257, "semi;colon", "a=b"])
def test_a_secret_outside_telegrams_rule_is_refused_without_being_shown(secret: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load(**BASE, webhook_url="https://bot.example.cn/telegram", webhook_secret=secret)
    message = str(refused.value)
    assert message == "WEBHOOK_SECRET: must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
    assert secret not in message
