"""LOG_LEVEL=DEBUG: the service logs what it does, but never the token, a phone or an ID number."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from bot import logs
from bot.service import Service
from bot.settings import Settings
from tests.e2e.conftest import TOKEN, Chat, bind, village_payload
from tests.emulator import BotAPIEmulator
from tests.support import seed_roster

ID_NUMBER = "11010519491231002X"
PHONE = "13912345678"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger, its handlers' filters and the library levels back after the test."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in logs.NOISY}
    root_level = root.level
    yield
    for handler in root.handlers:
        for found in [f for f in handler.filters if isinstance(f, logs.Redactor)]:
            handler.removeFilter(found)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.setLevel(root_level)


async def declare_with_phone_and_id(service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]) -> None:
    """A household shares its phone number, types its ID number and both again in the description."""
    await seed_roster(service.uow)
    cadre = chat(2001, "张伟")
    await bind(service, cadre, "13800000001")
    farmer = chat(1001)
    await emu.send_command(farmer.user, "start", village_payload())
    await farmer.press(await farmer.expect("李家村", "12317", "知情同意"), "同意，开始填写")
    await farmer.expect("户主姓名")
    await farmer.send("王大山")
    await farmer.press(await farmer.expect("本人"), "我是户主本人")
    await farmer.expect("联系电话")
    await emu.send_contact(farmer.user, f"+86{PHONE}")  # a contact card shared from the attachment menu
    await farmer.expect("身份证号")
    await farmer.send(ID_NUMBER.lower())
    await farmer.press(await farmer.expect("几口人"), "4")
    choose = await farmer.expect("哪些困难")
    await farmer.press(choose, "因病")
    await farmer.press(choose, "选好了，下一步")
    await farmer.expect("多少钱")
    await farmer.send("3万")
    await farmer.expect("具体情况")
    await farmer.send(f"老伴住院，电话 {PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}，身份证 {ID_NUMBER}")
    await farmer.press(await farmer.expect("照片"), "没有照片，跳过")
    await farmer.press(await farmer.expect("请核对"), "确认提交")
    await farmer.expect("回执编号")
    await cadre.expect("新申报", "王大山", PHONE)  # the cadre does see the number, in chat


def assert_nothing_secret(records: list[logging.LogRecord]) -> str:
    formatted = "\n".join(logging.Formatter(logs.FORMAT).format(r) for r in records).lower()
    for secret in (TOKEN, TOKEN.partition(":")[2], PHONE, ID_NUMBER, ID_NUMBER[:17]):
        assert secret.lower() not in formatted, secret
    return formatted


async def test_debug_logs_what_we_do_but_not_the_bot_api_traffic_and_nothing_personal(
    settings: Settings,
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
    caplog: pytest.LogCaptureFixture,
    restore_logging: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    logs.configure(settings.model_copy(update={"log_level": "DEBUG"}))  # as `python -m bot run` does
    async with Service(settings, poll_timeout=1) as service:
        await declare_with_phone_and_id(service, emu, chat)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    quieted = [r for r in caplog.records if r.levelno < logging.INFO and r.name.startswith(tuple(logs.NOISY))]
    assert quieted == [], {r.name for r in quieted}
    assert_nothing_secret(caplog.records)


async def test_debug_logs_with_every_library_verbose_are_redacted(
    settings: Settings,
    emu: BotAPIEmulator,
    chat: Callable[..., Chat],
    caplog: pytest.LogCaptureFixture,
    restore_logging: None,
) -> None:
    caplog.set_level(logging.DEBUG)
    # As the sandbox runs: the Bot API calls and answers at DEBUG (the Bot API is reached through
    # aiohttp, bot/http.py, which logs no request URL; httpx's would carry the token).
    logs.configure(settings.model_copy(update={"log_level": "DEBUG"}), quiet_libraries=False)
    async with Service(settings, poll_timeout=1) as service:
        await declare_with_phone_and_id(service, emu, chat)
    names = {r.name for r in caplog.records if r.levelno == logging.DEBUG}
    assert "telegram.ext.ExtBot" in names, names
    formatted = assert_nothing_secret(caplog.records)
    # The contact, the typed ID number and the description did reach the log, redacted.
    assert "[phone]" in formatted and "[id]" in formatted and "sendmessage" in formatted
