"""The SMS settings: off unless SMS_PROVIDER is set; when set, what is missing is one clear line,
and the template file is checked before the service starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.service import Service
from bot.settings import ConfigError, Settings
from domain import delivery
from domain.model import Channel

ROOT = Path(__file__).resolve().parents[2]


def settings(**values: object) -> Settings:
    return Settings(
        _env_file=None, telegram_bot_token="1:T", qr_secret="s" * 16, id_encryption_key="k" * 16, **values
    )  # type: ignore[arg-type]


def aliyun(**values: object) -> Settings:
    base: dict[str, object] = {
        "sms_provider": "aliyun",
        "sms_key_id": "LTAI-test",
        "sms_key_secret": "secret",
        "sms_sign_name": "青山镇人民政府",
        "sms_templates": str(ROOT / "sms-templates.aliyun.example.toml"),
    }
    return settings(**{**base, **values})


def test_without_a_provider_texts_are_off() -> None:
    service = Service(settings())
    assert settings().sms() is None and service.sms is None
    assert not delivery.texts_on()


def test_each_missing_setting_is_named_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(sms_provider="tencent", sms_templates="x.toml").sms()
    message = str(caught.value)
    assert "\n" not in message
    for name in ("SMS_KEY_ID", "SMS_SIGN_NAME", "SMS_SDK_APP_ID", "SMS_KEY_SECRET"):
        assert name in message
    assert "SMS_TEMPLATES" not in message


def test_a_template_file_missing_a_kind_stops_the_start(tmp_path: Path) -> None:
    example = (ROOT / "sms-templates.aliyun.example.toml").read_text(encoding="utf-8")
    start = example.index("[visited]")
    end = example.index("\n[", start + 1)
    broken = tmp_path / "sms.toml"
    broken.write_text(example[:start] + example[end + 1 :], encoding="utf-8")

    with pytest.raises(ConfigError, match="no template for visited"):
        Service(aliyun(sms_templates=str(broken)))


def test_a_configured_provider_switches_texts_on_only_while_the_service_runs() -> None:
    service = Service(aliyun())
    assert service.sms is not None and service.sms.provider.name == "aliyun"
    assert not delivery.texts_on()  # not before start (tests build services without starting them)


def test_the_secret_never_shows(capsys: pytest.CaptureFixture[str]) -> None:
    chosen = aliyun(sms_key_secret="do-not-print-me")
    assert "do-not-print-me" not in repr(chosen) and "do-not-print-me" not in repr(chosen.sms())


def test_the_callback_token_is_checked() -> None:
    with pytest.raises(ConfigError, match="SMS_CALLBACK_TOKEN"):
        aliyun(sms_callback_token="short").sms()
    config = aliyun(sms_callback_token="a" * 20).sms()
    assert config is not None and config.callback_token == "a" * 20
    assert Channel.SMS.value == "sms"
