"""End-to-end: the real PTB application, started as `python -m bot run` starts it, over HTTP
to the local Bot API emulator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.service import Service
from bot.settings import Settings, load
from domain import people
from qr.payload import sign_village
from tests.emulator import BotAPIEmulator, EmuMessage, EmuUser
from tests.support import SHANGHAI, seed_roster

TOKEN = "123456:TEST-TOKEN"
SECRET = "e2e-secret-0123456789abcdef"
USERNAME = "fanghui_test_bot"


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(token=TOKEN, bot_username=USERNAME) as emulator:
        # An answered question edited into the next one ("✓ <answer>" first) is what the person
        # reads next; a toggled list redrawn in place is not.
        emulator.read_edits_as_new = lambda old, new: new.startswith("✓ ")
        yield emulator


@pytest.fixture
def settings(emu: BotAPIEmulator, tmp_path: Path) -> Settings:
    return load(
        telegram_bot_token=TOKEN,
        telegram_api_base_url=emu.base_url,
        telegram_api_file_url=emu.base_file_url,
        database_url=f"sqlite:///{tmp_path / 'e2e.db'}",
        qr_secret=SECRET,
        id_encryption_key="e2e-id-key-0123456789abcdef",
        bot_username=None,  # asked of the Bot API with getMe, as a new deployment would
        web_port=0,
        # The people in these dialogs answer faster than anyone can type, so the chat pace is
        # raised from Telegram's 1 a second; the pace itself is tested in tests/bot/test_sender.py
        # and benchmarks/broadcast.py, and the flood tests set their own.
        chat_burst=10,
        chat_rate_per_second=10.0,
        _env_file=None,
    )


class ShiftedClock:
    """The real clock moved by a fixed offset, so the service's day differs from the machine's."""

    def __init__(self, at: str) -> None:
        hour, minute = (int(part) for part in at.split(":"))
        now = datetime.now(SHANGHAI)
        # The evening of the day before the machine's (UTC) date, in the service's zone.
        target = datetime.combine(
            datetime.now(UTC).date() - timedelta(days=1), time(hour, minute), tzinfo=SHANGHAI
        )
        self.offset = target - now

    def now(self) -> datetime:
        return datetime.now(SHANGHAI) + self.offset


def service_clock() -> ShiftedClock | None:
    """E2E_SERVICE_TIME=23:30 runs the service at that hour of the day before the machine's date
    (`.ci/run` does it once with TZ=UTC): a test that reads the machine's date or zone where the
    service uses its own clock fails then, at whatever hour CI runs."""
    at = os.environ.get("E2E_SERVICE_TIME")
    return ShiftedClock(at) if at else None


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[Service]:
    async with Service(settings, poll_timeout=1, clock=service_clock()) as running:
        await seed_roster(running.uow)
        yield running


def service_today() -> date:
    """Today where the service keeps its clock (Asia/Shanghai), whatever the machine's zone."""
    clock = service_clock()
    return (clock.now() if clock else datetime.now(SHANGHAI)).date()


def village_payload(code: str = "QS01", valid_until: date | None = None) -> str:
    return sign_village(SECRET.encode(), code, valid_until or service_today() + timedelta(days=365))


class Chat:
    """One person's private chat with the bot, as a readable dialog."""

    def __init__(self, emu: BotAPIEmulator, user: EmuUser) -> None:
        self.emu = emu
        self.user = user

    async def send(self, text: str) -> None:
        await self.emu.send_text(self.user, text)

    async def expect(self, *phrases: str, timeout: float = 10.0) -> EmuMessage:
        """The next message from the bot, which must contain every phrase."""
        message = await self.emu.next_message(self.user.id, timeout=timeout)
        text = message.text or ""
        missing = [p for p in phrases if p not in text]
        assert not missing, f"bot said {text!r}; missing {missing}\n{self.emu.transcript(self.user.id)}"
        return message

    async def press(self, message: EmuMessage, button: str) -> str:
        """Press a button; returns the short answer shown to the person (may be empty)."""
        query = await self.emu.press(self.user, message, button)
        answer = await self.emu.wait_for_answer(query)
        return str(answer.get("text") or "")

    async def press_data(self, message: EmuMessage | int, data: str) -> str:
        query = await self.emu.press_data(self.user, message, data)
        answer = await self.emu.wait_for_answer(query)
        return str(answer.get("text") or "")

    async def silent(self, within: float = 0.7) -> None:
        await self.emu.no_message(self.user.id, within=within)


@pytest.fixture
def chat(emu: BotAPIEmulator) -> Callable[..., Chat]:
    def make(user_id: int, name: str = "User", language_code: str | None = "zh-hans") -> Chat:
        return Chat(emu, emu.user(user_id, name, language_code=language_code))

    return make


async def bind(service: Service, chat: Chat, phone: str) -> EmuMessage:
    """Invite the roster person with `phone` and open the link in `chat`, as a cadre would."""
    async with service.uow() as uow:
        invite = await people.issue_invite(uow, service.clock, phone)
        await uow.commit()
    await chat.emu.send_command(chat.user, "start", invite.payload)
    return await chat.expect("您好")


async def declare(
    farmer: Chat,
    payload: str | None = None,
    *,
    village: str = "李家村",
    name: str = "王大山",
    phone: str = "13912345678",
    risks: tuple[str, ...] = ("因病",),
    description: str = "老伴住院做手术，花了三万多元",
) -> EmuMessage:
    """A household declares, the plainest way through (in Chinese); returns the summary."""
    await farmer.emu.send_command(farmer.user, "start", payload or village_payload())
    await farmer.press(await farmer.expect(village, "12317", "知情同意"), "同意，开始填写")
    await farmer.expect("请输入户主姓名", village)
    await farmer.send(name)
    await farmer.press(await farmer.expect(name, "本人"), "我是户主本人")
    ask_phone = await farmer.expect("联系电话")
    # Typed; Back and Cancel on the question itself (no reply keyboard to put up and take away).
    assert not ask_phone.requests_contact and {"← 返回", "取消"} <= set(ask_phone.button_texts)
    await farmer.send(phone)
    await farmer.press(await farmer.expect("身份证号"), "不填身份证号，跳过")
    await farmer.press(await farmer.expect("几口人"), "4")
    choose = await farmer.expect("哪些困难")
    for risk in risks:
        await farmer.press(choose, risk)
    await farmer.press(choose, "选好了，下一步")
    if "因病" in risks:
        await farmer.expect("多少钱")
        await farmer.send("3万")
    await farmer.expect("具体情况")
    await farmer.send(description)
    await farmer.press(await farmer.expect("照片"), "没有照片，跳过")
    return await farmer.expect("请核对", name, village)


async def visit(cadre: Chat, acknowledged: EmuMessage, notes: str = "入户看了，情况属实") -> EmuMessage:
    """Record the home visit from the message that offers it; returns the message with the verdicts."""
    await cadre.press(acknowledged, "记录入户核实")
    await cadre.press(await cadre.expect("哪天去的"), "今天")
    await cadre.expect("核实情况怎么样")
    await cadre.send(notes)
    await cadre.press(await cadre.expect("有照片"), "核实记录完成")
    return await cadre.expect("入户核实已记录", "认定结果")
