"""A notice to 5,000 village cadres through the local Bot API emulator enforcing Telegram's
flood limits (30 messages a second overall, 1 a second per chat; 429 with retry_after beyond).

    .venv/bin/python benchmarks/broadcast.py [--recipients 5000]

The notice is queued by the real use case (domain.notices.dispatch) and delivered by the real
sender (bot.sender.OutboxSender with the service's pacer and PTB bot). The last line printed is
one JSON object: rate_per_cap (messages a second while sending / 30), sent, lost, duplicated,
flood_errors, seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import SystemClock
from bot.pacing import Pacer
from bot.sender import OutboxSender
from bot.service import build_application
from bot.settings import load
from domain import notices
from domain.model import Audience, Channel, Role
from handlers.keyboards import markup_of
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.outbox_store import OutboxStore
from storage.tables import CadreVillageRow, ChannelAccountRow, PersonRow
from storage.uow import SqlUnitOfWorkFactory
from tests.emulator import BotAPIEmulator

TOKEN = "123456:BENCH-TOKEN"


class TimedStore(OutboxStore):
    """The outbox store, noting when each message was recorded as sent."""

    stamps: list[float]

    async def sent(self, message_id: int, at: datetime, external_id: str | None) -> None:
        self.stamps.append(time.monotonic())
        await super().sent(message_id, at, external_id)


CAP = 30
FIRST_USER = 10_000_000


async def seed(uow: SqlUnitOfWorkFactory, emu: BotAPIEmulator, recipients: int, clock: SystemClock) -> int:
    """A township, one village, `recipients` bound cadres and one staff member; returns the notice id."""
    async with uow() as work:
        township = await work.geography.add_township("青山镇")
        village = await work.geography.add_village("QS01", "李家村", township.id)
        staff = await work.persons.add(Role.TOWNSHIP, name="王芳", township_id=township.id)
        await work.persons.bind(staff.id, Channel.TELEGRAM, str(FIRST_USER - 1), clock.now())
        emu.user(FIRST_USER - 1, "王芳")
        session = work.session
        now = clock.now()
        for n in range(recipients):
            row = PersonRow(role=Role.CADRE.value, name=f"干部{n}", created_at=now)
            session.add(row)
            await session.flush()
            session.add(CadreVillageRow(person_id=row.id, village_id=village.id))
            session.add(
                ChannelAccountRow(
                    person_id=row.id,
                    channel=Channel.TELEGRAM.value,
                    address=str(FIRST_USER + n),
                    bound_at=now,
                )
            )
            emu.user(FIRST_USER + n, f"C{n}")
        draft = await work.notices.add(
            township.id,
            staff.id,
            body="请各村于本周五前完成集中排查入户走访，并上报进度。",
            audience={"kind": Audience.CADRES.value},
            media=None,
            send_at=None,
            at=now,
        )
        await work.commit()
    return draft.id


async def main(recipients: int) -> dict[str, object]:
    clock = SystemClock(load(_env_file=None).zone)
    with tempfile.TemporaryDirectory() as tmp:
        async with BotAPIEmulator(token=TOKEN, bot_username="bench_bot") as emu:
            emu.enforce_limits = True
            emu.limit_per_second = CAP
            emu.limit_per_private_chat_per_second = 1
            settings = load(
                telegram_bot_token=TOKEN,
                telegram_api_base_url=emu.base_url,
                telegram_api_file_url=emu.base_file_url,
                database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
                _env_file=None,
            )
            engine = create_engine(settings.database_url)
            await upgrade(engine)
            sessions = session_factory(engine)
            uow = SqlUnitOfWorkFactory(sessions)
            notice_id = await seed(uow, emu, recipients, clock)
            async with uow() as work:
                await notices.dispatch(work, clock, notice_id)  # type: ignore[arg-type]
                await work.commit()
            application = build_application(settings)
            await application.initialize()
            timed = TimedStore(sessions)
            timed.stamps = []
            sender = OutboxSender(
                timed, application.bot, clock, settings.default_locale, keyboard=markup_of, pacer=Pacer(CAP)
            )
            store = OutboxStore(sessions)
            started = time.monotonic()
            sender.start()
            total = recipients + 1  # and the status message to the author
            try:
                while (await store.counts()).get("sent", 0) + (await store.counts()).get("failed", 0) < total:
                    await asyncio.sleep(0.5)
                    if time.monotonic() - started > 280:
                        break
            finally:
                await sender.stop()
                await application.shutdown()
            seconds = time.monotonic() - started
            sends = [c for c in emu.calls if c[0] == "sendMessage"]
            per_chat = Counter(
                int(params["chat_id"]) for method, params in emu.calls if method == "sendMessage"
            )
            delivered = Counter(
                FIRST_USER + n for n in range(recipients) for _ in emu.messages(FIRST_USER + n)
            )
            lost = sum(1 for n in range(recipients) if delivered[FIRST_USER + n] == 0)
            duplicated = sum(max(0, count - 1) for count in delivered.values())
            await engine.dispose()
    # The sustained rate: messages between the first answer and the last, over that span.
    stamps = sorted(timed.stamps)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else seconds
    sent = sum(delivered.values())
    rate = (len(stamps) - 1) / span if span > 0 else 0.0
    return {
        "recipients": recipients,
        "sent": sent,
        "lost": lost,
        "duplicated": duplicated,
        "flood_errors": emu.flood_errors,
        "rate_per_cap": round(rate / CAP, 4),
        "rate_per_second": round(rate, 2),
        "seconds": round(seconds, 1),
        "requests": len(sends),
        "max_per_chat": max(per_chat.values()) if per_chat else 0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.recipients)), ensure_ascii=False))
