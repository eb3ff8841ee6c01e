"""The SMS sender over a real database, with a scripted provider: what is queued for a household
reachable only by text, each provider answer, the per-number limits, quiet hours, receipts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.deadlines import PolicyRules
from bot.sms.port import Answer, Found, Limits, Outcome, Report, Text
from bot.sms.sender import SmsSender
from domain import delivery
from domain.messages import Outgoing, day
from domain.model import Channel, Role
from domain.policy import load_policy
from domain.sms import SmsText
from storage.outbox_retention import purge_done_before
from storage.outbox_store import OutboxStore
from storage.sms import SmsStore
from storage.tables import OutboxRow, SmsSendRow
from storage.uow import SqlUnitOfWorkFactory
from tests.support import SHANGHAI, FakeClock

pytestmark = pytest.mark.asyncio

PHONE = "13900001111"


@dataclass
class ScriptedProvider:
    """Answers from a script (then ACCEPTED); remembers what it took, as a provider would."""

    script: list[Answer] = field(default_factory=list)
    sent: list[Text] = field(default_factory=list)
    taken: dict[str, str] = field(default_factory=dict)  # out_id -> provider id
    name: str = "aliyun"
    max_param_chars: int = 35
    max_text_chars: int = 500

    async def send(self, text: Text) -> Answer:
        self.sent.append(text)
        answer = (
            self.script.pop(0)
            if self.script
            else Answer(Outcome.ACCEPTED, provider_id=f"biz-{len(self.sent)}")
        )
        if answer.outcome is Outcome.ACCEPTED or answer.uncertain:
            # A time-out after the provider took it: it has the text, we do not know.
            self.taken[text.out_id] = answer.provider_id or f"biz-{len(self.sent)}"
        return answer

    unreachable: int = 0  # `find` fails this many times (the provider cannot be asked)

    async def find(self, phone: str, out_id: str, sent_on: datetime) -> Found | None:
        if self.unreachable:
            self.unreachable -= 1
            raise ConnectionError("no answer")
        return Found(self.taken[out_id]) if out_id in self.taken else None

    async def reports(self, phone: str, sent_on: datetime) -> list[Report]:
        return []

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> tuple[list[Report], bytes]:
        raise ValueError("not used")

    async def close(self) -> None:
        return None


@pytest.fixture
def texts_on() -> AsyncIterator[None]:
    before = delivery.switch_on(Channel.SMS)
    yield
    delivery.restore(before)


async def household(uow: SqlUnitOfWorkFactory, clock: FakeClock, phone: str = PHONE) -> int:
    async with uow() as u:
        person = await u.persons.add(Role.FARMER, locale="zh_Hans")
        assert await delivery.reach_by_text(u, clock, person.id, "+86" + phone)
        await u.commit()
    return person.id


async def queue(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, person: int, message: Outgoing, key: str
) -> bool:
    async with uow() as u:
        queued = await u.outbox.add(person, message, key=key, at=clock.now())
        await u.commit()
    return queued


def acknowledged(receipt: str = "20261123000001") -> Outgoing:
    return Outgoing("farmer.acknowledged", {"receipt": receipt, "name": "李明"})


def sender(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, provider: ScriptedProvider, **kw: object
) -> SmsSender:
    def render(text: SmsText) -> tuple[str, dict[str, str]]:
        return "SMS_1", {
            "receipt": str(text.values.get("receipt", "")),
            "state": str(text.values.get("state", "")),
        }

    return SmsSender(
        OutboxStore(uow.sessions),
        SmsStore(uow.sessions),
        provider,
        render,
        clock,
        PolicyRules(load_policy("anhui")),
        **kw,  # type: ignore[arg-type]
    )


async def rows(uow: SqlUnitOfWorkFactory) -> list[OutboxRow]:
    async with uow.sessions() as session:
        return list(await session.scalars(select(OutboxRow).order_by(OutboxRow.id)))


async def test_a_household_reachable_only_by_text_gets_the_steps_with_a_text_form_and_nothing_else(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)

    assert await queue(uow, clock, person, acknowledged(), "a")
    assert not await queue(uow, clock, person, Outgoing("farmer.ask_objection", {}), "b")  # chat only
    assert not await queue(
        uow, clock, person, Outgoing("notice.body", {"body": "x"}), "c"
    )  # never broadcasts
    reminder = Outgoing("deadline.reminder", {"receipt": "20261123000001"})
    assert not await queue(uow, clock, person, reminder, "d")  # a cadre's: not sent by text

    [row] = await rows(uow)
    assert row.channel == "sms" and row.status == "pending"
    assert row.payload["sms"] == {
        "kind": "acknowledged",
        "values": {"receipt": "20261123000001", "state": "state.acknowledged"},
        "urgent": False,
    }


async def test_only_a_mobile_number_is_reached_by_text(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    async with uow() as u:
        person = await u.persons.add(Role.FARMER, locale="zh_Hans")
        assert not await delivery.reach_by_text(u, clock, person.id, "+865512345678")  # a fixed line
        assert await delivery.reach_by_text(u, clock, person.id, "+8613900003333")
        found = await delivery.text_holder(u, "+8613900003333")
        assert found is not None and found.id == person.id
        assert await u.persons.address_of(person.id, Channel.SMS) == "13900003333"


async def test_with_texts_off_nothing_is_queued_for_a_number(
    uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    before = delivery.switch_on(Channel.SMS)
    person = await household(uow, clock)
    delivery.restore(before)  # the provider's settings were removed

    assert not await queue(uow, clock, person, acknowledged(), "a")
    assert await rows(uow) == []


async def test_an_accepted_text_is_recorded_and_never_sent_again(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    provider = ScriptedProvider()
    sms = sender(uow, clock, provider)

    assert await sms.drain_once() == 1
    assert await sms.drain_once() == 0

    [text] = provider.sent
    assert (text.phone, text.template_code, text.params["receipt"]) == (PHONE, "SMS_1", "20261123000001")
    [row] = await rows(uow)
    assert (row.status, row.external_id) == ("sent", "biz-1")
    async with uow.sessions() as session:
        [send] = list(await session.scalars(select(SmsSendRow)))
    assert (send.phone, send.kind, send.out_id) == (PHONE, "acknowledged", f"fh-{row.id}")


async def test_a_time_out_after_the_provider_took_it_is_not_sent_twice(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    provider = ScriptedProvider([Answer(Outcome.RETRY, code="timeout", uncertain=True)])
    sms = sender(uow, clock, provider)

    await sms.drain_once()
    [row] = await rows(uow)
    assert (row.status, row.attempts) == ("pending", 1)
    clock.advance(seconds=119)
    assert await sms.drain_once() == 0  # the provider's records are given time to show it
    clock.advance(seconds=1)
    await sms.drain_once()

    assert len(provider.sent) == 1  # asked by its out-id, found, not sent again
    [row] = await rows(uow)
    assert row.status == "sent"


async def test_when_the_provider_cannot_be_asked_the_text_waits_rather_than_going_twice(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    provider = ScriptedProvider([Answer(Outcome.RETRY, code="timeout", uncertain=True)], unreachable=3)
    sms = sender(uow, clock, provider)

    await sms.drain_once()
    for _ in range(3):
        clock.advance(seconds=120)
        await sms.drain_once()
        [row] = await rows(uow)
        assert row.status == "pending" and len(provider.sent) == 1
    clock.advance(seconds=120)
    await sms.drain_once()

    [row] = await rows(uow)
    assert row.status == "sent" and len(provider.sent) == 1


async def test_server_errors_are_retried_with_backoff_and_sent_once(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    provider = ScriptedProvider(
        [Answer(Outcome.RETRY, code="500"), Answer(Outcome.RETRY, code="isp.SYSTEM_ERROR")]
    )
    sms = sender(uow, clock, provider)

    await sms.drain_once()
    assert await sms.drain_once() == 0  # not before its backoff
    clock.advance(seconds=1)
    await sms.drain_once()
    clock.advance(seconds=1)
    assert await sms.drain_once() == 0  # the second backoff is 2 s
    clock.advance(seconds=1)
    await sms.drain_once()

    assert len(provider.sent) == 3
    [row] = await rows(uow)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_throttling_waits_what_the_provider_asked_without_counting_an_attempt(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    provider = ScriptedProvider(
        [Answer(Outcome.THROTTLED, code="isv.BUSINESS_LIMIT_CONTROL", retry_after=60)]
    )
    sms = sender(uow, clock, provider)

    await sms.drain_once()
    clock.advance(seconds=59)
    assert await sms.drain_once() == 0
    clock.advance(seconds=1)
    await sms.drain_once()

    [row] = await rows(uow)
    assert (row.status, row.attempts, len(provider.sent)) == ("sent", 0, 2)


async def test_a_permanent_refusal_fails_the_text_and_is_listed_for_the_township(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    sms = sender(uow, clock, ScriptedProvider([Answer(Outcome.FAILED, code="isv.MOBILE_NUMBER_ILLEGAL")]))

    await sms.drain_once()

    [row] = await rows(uow)
    assert (row.status, row.last_error) == ("failed", "sms failed: isv.MOBILE_NUMBER_ILLEGAL")
    assert delivery.reason_key(row.last_error or "") == "sender.reason_sms_failed"


async def test_the_per_number_limits_hold_a_text_until_its_window_frees(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    provider = ScriptedProvider()
    sms = sender(uow, clock, provider, limits=Limits(per_minute=1, per_hour=3, per_day=10))
    for n in range(4):
        await queue(uow, clock, person, acknowledged(f"2026112300000{n}"), f"k{n}")

    await sms.drain_once()
    assert len(provider.sent) == 1  # one a minute: the rest wait behind it, in order
    clock.advance(seconds=59)
    await sms.drain_once()
    assert len(provider.sent) == 1
    clock.advance(seconds=1)
    await sms.drain_once()
    clock.advance(seconds=60)
    await sms.drain_once()
    assert len(provider.sent) == 3
    clock.advance(seconds=60)
    await sms.drain_once()
    assert len(provider.sent) == 3  # three an hour
    clock.advance(minutes=58)
    await sms.drain_once()

    assert [t.params["receipt"] for t in provider.sent] == [f"2026112300000{n}" for n in range(4)]
    # Another number is not held back by this one's texts.
    other = await household(uow, clock, "13900002222")
    await queue(uow, clock, other, acknowledged("20261123000009"), "other")
    await sms.drain_once()
    assert provider.sent[-1].phone == "13900002222"


async def test_texts_wait_out_quiet_hours_unless_the_case_is_urgent(
    uow: SqlUnitOfWorkFactory, texts_on: None
) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI))
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "night")
    provider = ScriptedProvider()
    sms = sender(uow, clock, provider)

    await sms.drain_once()
    assert provider.sent == []
    [row] = await rows(uow)
    assert row.next_attempt_at.astimezone(SHANGHAI) == datetime(2026, 11, 24, 7, 0, tzinfo=SHANGHAI)
    clock.advance(hours=8)  # 07:00, the policy's quiet hours are over
    await sms.drain_once()
    assert len(provider.sent) == 1


async def test_an_urgent_text_goes_at_night(uow: SqlUnitOfWorkFactory, texts_on: None) -> None:
    clock = FakeClock(datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI))
    person = await household(uow, clock)
    message = Outgoing("farmer.visited", {"receipt": "R2", "date": day("2026-11-23")}, urgent=True)
    await queue(uow, clock, person, message, "u")
    provider = ScriptedProvider()

    await sender(uow, clock, provider).drain_once()

    assert [t.params["receipt"] for t in provider.sent] == ["R2"]


async def test_an_undelivered_receipt_fails_the_text_and_a_later_delivered_one_mends_it(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    await sender(uow, clock, ScriptedProvider()).drain_once()
    store = SmsStore(uow.sessions)
    [row] = await rows(uow)

    assert not await store.report(
        out_id="fh-999999", provider_id=None, delivered=False, code="X", at=clock.now()
    )
    assert await store.report(
        out_id=f"fh-{row.id}", provider_id=None, delivered=False, code="MK:0001", at=clock.now()
    )
    [row] = await rows(uow)
    assert (row.status, row.last_error) == ("failed", "sms undelivered: MK:0001")
    assert delivery.reason_key(row.last_error or "") == "sender.reason_sms_undelivered"

    assert await store.report(
        out_id=None, provider_id="biz-1", delivered=True, code="DELIVRD", at=clock.now()
    )
    [row] = await rows(uow)
    assert row.status == "sent"
    async with uow.sessions() as session:
        [send] = list(await session.scalars(select(SmsSendRow)))
    assert (send.delivery, send.delivery_code) == ("delivered", "DELIVRD")


async def test_a_texts_number_is_kept_no_longer_than_the_outbox_keeps_its_message(
    uow: SqlUnitOfWorkFactory, clock: FakeClock, texts_on: None
) -> None:
    person = await household(uow, clock)
    await queue(uow, clock, person, acknowledged(), "a")
    await sender(uow, clock, ScriptedProvider()).drain_once()

    await purge_done_before(uow.sessions, before=clock.now())
    async with uow.sessions() as session:
        assert len(list(await session.scalars(select(SmsSendRow)))) == 1
    await purge_done_before(uow.sessions, before=clock.now() + timedelta(days=30))

    async with uow.sessions() as session:
        assert list(await session.scalars(select(SmsSendRow))) == []
    [row] = await rows(uow)
    assert row.payload == {"template": "farmer.acknowledged", "purged": True}
