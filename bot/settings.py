"""All settings, from the environment and an optional `.env` file. Only this module reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from domain.policy import Policy, PolicyError, load_policy
from locales import parse_locale


class ConfigError(Exception):
    """A setting is missing or wrong; the message is one line saying what to set."""


# CJK TrueType fonts a flyer may embed when FLYER_FONT is unset, first found wins (Debian's
# fonts-wqy-zenhei: TrueType outlines, which reportlab can embed; Noto CJK's are CFF, which it cannot).
FLYER_FONTS = (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),)
# A webhook over plain http only to this machine (a local Bot API server, the tests).
LOCAL_HOSTS = ("127.0.0.1", "localhost")
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # Telegram's secret_token


@dataclass(frozen=True)
class SmsConfig:
    """The SMS channel's settings, checked (Settings.sms)."""

    provider: Literal["aliyun", "tencent"]
    key_id: str
    key_secret: SecretStr
    sign_name: str
    sdk_app_id: str
    region: str
    endpoint: str | None
    templates: Path
    callback_token: str | None
    per_minute: int
    per_hour: int
    per_day: int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    telegram_api_file_url: str = "https://api.telegram.org/file/bot"
    database_url: str = "sqlite+aiosqlite:///var/fanghui.db"
    qr_secret: SecretStr | None = None
    id_encryption_key: SecretStr | None = None
    id_encryption_old_keys: SecretStr | None = None  # comma-separated: they open, never seal
    bot_username: str | None = None
    default_locale: str = "zh_Hans_CN"
    timezone: str = "Asia/Shanghai"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    log_level: str = "INFO"
    policy: str = "anhui"
    quiet_hours: str | None = None  # HH:MM-HH:MM; unset: the policy file's [quiet_hours]
    tick_seconds: float = Field(default=5.0, gt=0)
    send_rate_per_second: int = Field(default=30, ge=1, le=1000)  # up to 1000: paid broadcasts
    chat_burst: int = Field(default=3, ge=1, le=10)
    chat_rate_per_second: float = Field(default=1.0, gt=0, le=30)
    # Days a delivered or failed message keeps its text (names, phones) in the outbox.
    outbox_retention_days: int = Field(default=30, ge=1)
    public_url: str | None = None
    # Webhooks (several workers): Telegram posts updates to WEBHOOK_URL with WEBHOOK_SECRET.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    webhook_max_connections: int = Field(default=40, ge=1, le=100)  # Telegram's setWebhook bounds
    qr_target: Literal["auto", "telegram", "landing"] = "auto"
    flyer_font: str | None = None
    # Text messages (SMS) to households without a chat: off unless SMS_PROVIDER is set (README).
    sms_provider: Literal["aliyun", "tencent"] | None = None
    sms_key_id: str | None = None  # Aliyun AccessKey ID / Tencent SecretId
    sms_key_secret: SecretStr | None = None  # Aliyun AccessKey Secret / Tencent SecretKey
    sms_sign_name: str | None = None  # the registered signature (签名), e.g. 某某镇人民政府
    sms_sdk_app_id: str | None = None  # Tencent only: SmsSdkAppId
    sms_region: str = "ap-guangzhou"  # Tencent only
    sms_endpoint: str | None = (
        None  # the provider's API address (default: its public one; tests: the emulator)
    )
    sms_templates: str | None = None  # the template file (sms-templates.*.example.toml shows the format)
    # The provider's delivery receipts are pushed to PUBLIC_URL/sms/receipts/<SMS_CALLBACK_TOKEN>;
    # unset: the service asks the provider for them instead.
    sms_callback_token: SecretStr | None = None
    sms_per_minute: int = Field(default=1, ge=1, le=100)  # per number and kind of text
    sms_per_hour: int = Field(default=5, ge=1, le=1000)
    sms_per_day: int = Field(default=10, ge=1, le=10000)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        if not url.startswith(("https://", "http://")) or " " in url:
            raise ValueError(f"not an http(s) address: {url!r}")
        return url.rstrip("/")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, url: str | None) -> str | None:
        if not url or not url.strip():
            return None
        url = url.strip()
        parts = urlsplit(url)
        reachable = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)
        if " " in url or not parts.hostname or not reachable:
            raise PydanticCustomError(
                "webhook_url",
                "not an https:// address Telegram can reach (http:// only for 127.0.0.1 or localhost): {url}",
                {"url": repr(url)},
            )
        return url

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, secret: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        value = secret.get_secret_value() if secret is not None else ""
        if not value:
            if info.data.get("webhook_url"):
                raise PydanticCustomError(
                    "webhook_secret",
                    "required when WEBHOOK_URL is set: 1-256 characters of A-Z, a-z, 0-9, _ and - "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
                )
            return None
        if not WEBHOOK_SECRET.fullmatch(value):
            # Never the secret itself in a message.
            raise PydanticCustomError(
                "webhook_secret", "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
            )
        return secret

    def qr_to_landing(self) -> bool:
        """Whether printed codes point to PUBLIC_URL/q/<payload> rather than straight to Telegram."""
        if self.qr_target == "telegram":
            return False
        if self.qr_target == "landing" and self.public_url is None:
            raise ConfigError("QR_TARGET=landing needs PUBLIC_URL, the address farmers' phones can open.")
        return self.public_url is not None

    def sms(self) -> SmsConfig | None:
        """The SMS channel's settings, checked (None: SMS off), or a ConfigError naming what is missing."""
        if self.sms_provider is None:
            return None
        needed = {
            "SMS_KEY_ID": self.sms_key_id,
            "SMS_SIGN_NAME": self.sms_sign_name,
            "SMS_TEMPLATES": self.sms_templates,
        }
        if self.sms_provider == "tencent":
            needed["SMS_SDK_APP_ID"] = self.sms_sdk_app_id
        secret = self.sms_key_secret.get_secret_value().strip() if self.sms_key_secret else ""
        missing = [name for name, value in needed.items() if not (value or "").strip()]
        if not secret:
            missing.append("SMS_KEY_SECRET")
        if missing:
            raise ConfigError(
                f"SMS_PROVIDER={self.sms_provider} needs {', '.join(missing)} (see README.md, text messages)."
            )
        assert (
            self.sms_templates is not None and self.sms_key_id is not None and self.sms_sign_name is not None
        )
        templates = Path(self.sms_templates).expanduser()
        if not templates.is_file():
            raise ConfigError(f"SMS_TEMPLATES: no such file: {templates}")
        if self.sms_endpoint and not self.sms_endpoint.startswith(("https://", "http://")):
            raise ConfigError(f"SMS_ENDPOINT: not an http(s) address: {self.sms_endpoint!r}")
        token = self.sms_callback_token.get_secret_value().strip() if self.sms_callback_token else ""
        if (token and not WEBHOOK_SECRET.fullmatch(token)) or 0 < len(token) < 16:
            raise ConfigError("SMS_CALLBACK_TOKEN: 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return SmsConfig(
            provider=self.sms_provider,
            key_id=self.sms_key_id.strip(),
            key_secret=SecretStr(secret),
            sign_name=self.sms_sign_name.strip(),
            sdk_app_id=(self.sms_sdk_app_id or "").strip(),
            region=self.sms_region,
            endpoint=self.sms_endpoint,
            templates=templates,
            callback_token=token or None,
            per_minute=self.sms_per_minute,
            per_hour=self.sms_per_hour,
            per_day=self.sms_per_day,
        )

    def flyer_font_file(self) -> Path:
        """The CJK TrueType font (.ttf or .ttc) flyers embed: FLYER_FONT, else a known system font."""
        if self.flyer_font:
            chosen = Path(self.flyer_font).expanduser()
            if not chosen.is_file():
                raise ConfigError(f"FLYER_FONT: no such file: {chosen}")
            return chosen
        for candidate in FLYER_FONTS:
            if candidate.is_file():
                return candidate
        raise ConfigError(
            "no Chinese font for flyers: install Debian's fonts-wqy-zenhei (apt-get install "
            "fonts-wqy-zenhei) or set FLYER_FONT to a TrueType font file (.ttf or .ttc)."
        )

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, text: str | None) -> str | None:
        from domain.schedule import QuietHours

        if text is None:
            return None
        try:
            QuietHours.parse(text)
        except ValueError:
            raise ValueError(f"not HH:MM-HH:MM: {text!r}") from None
        return text

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept plain sqlite:// and postgresql:// URLs and pick the async drivers for them."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {exc}") from None
        drivers = {
            "sqlite": "sqlite+aiosqlite",
            "postgresql": "postgresql+asyncpg",
            "postgres": "postgresql+asyncpg",
        }
        if parsed.drivername in drivers:
            parsed = parsed.set(drivername=drivers[parsed.drivername])
        return parsed.render_as_string(hide_password=False)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, code: str) -> str:
        if parse_locale(code) is None:
            raise ValueError(f"unknown locale {code!r}")
        return code

    @field_validator("bot_username")
    @classmethod
    def _username(cls, name: str | None) -> str | None:
        return name.lstrip("@") if name else None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def token(self) -> str:
        """The bot token, or a ConfigError saying how to get one."""
        if self.telegram_bot_token is None or not self.telegram_bot_token.get_secret_value().strip():
            raise ConfigError(
                "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put its token in "
                "the environment or in .env (see README.md)."
            )
        return self.telegram_bot_token.get_secret_value().strip()

    def secret(self) -> bytes:
        """The key that signs QR payloads, or a ConfigError."""
        value = self.qr_secret.get_secret_value() if self.qr_secret else ""
        if len(value) < 16:
            raise ConfigError(
                "QR_SECRET is not set (or shorter than 16 characters): set it to a long random "
                "string, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`, and "
                "keep it: printed QR codes stop working if it changes."
            )
        return value.encode("utf-8")

    def id_key(self) -> bytes:
        """The key ID numbers are sealed with, ID_ENCRYPTION_KEY (required), or a ConfigError."""
        value = self.id_encryption_key.get_secret_value().strip() if self.id_encryption_key else ""
        if not value:
            raise ConfigError(
                "ID_ENCRYPTION_KEY is not set: make one with `python -m bot keys new`, put it in the "
                "environment or in .env, and keep it: ID numbers sealed with it cannot be read without it."
            )
        if len(value) < 16:
            raise ConfigError(
                "ID_ENCRYPTION_KEY is shorter than 16 characters: make one with `python -m bot keys new`."
            )
        if self.qr_secret is not None and value == self.qr_secret.get_secret_value().strip():
            raise ConfigError(
                "ID_ENCRYPTION_KEY must not be QR_SECRET: make its own with `python -m bot keys new`."
            )
        return value.encode("utf-8")

    def id_old_keys(self) -> tuple[bytes, ...]:
        """ID_ENCRYPTION_OLD_KEYS, comma-separated: earlier keys, which still open what they sealed."""
        text = self.id_encryption_old_keys.get_secret_value() if self.id_encryption_old_keys else ""
        keys = [part.strip() for part in text.split(",") if part.strip()]
        for number, key in enumerate(keys, 1):
            if len(key) < 16:
                # Never the key itself in a message: its place in the list says which.
                raise ConfigError(
                    f"ID_ENCRYPTION_OLD_KEYS: key {number} is shorter than 16 characters "
                    "(separate the keys with commas)."
                )
        return tuple(dict.fromkeys(key.encode("utf-8") for key in keys))

    def load_policy(self) -> Policy:
        """The procedure's time limits: a shipped profile ("anhui", "gansu") or a TOML file.
        QUIET_HOURS, when set, replaces the file's quiet hours: one window for every reminder."""
        from domain.schedule import QuietHours

        try:
            policy = load_policy(self.policy)
            if self.quiet_hours is not None:
                window = QuietHours.parse(self.quiet_hours)
                policy = replace(policy, quiet_start=window.start, quiet_end=window.end)
            return policy
        except PolicyError as exc:
            raise ConfigError(f"POLICY: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"POLICY: cannot read {self.policy}: {exc.strerror}") from None


def load(**overrides: object) -> Settings:
    """Settings from the environment, `.env` and `overrides`; a bad value is one ConfigError line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None
