"""Which channel a message goes by, and what happens when a message cannot be delivered.

A message addresses a person, never a channel: the outbox sends it by the first channel of
`CHANNELS` the person has an address on. Use cases never name a channel; this module and the
front ends (which learn who an address is) are the only places that do.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain.actor import Actor
from domain.messages import Outgoing, text
from domain.model import Channel, Role
from domain.ports import Clock, UnitOfWork

# The channels a message can go by, in order of preference. Telegram today; a second channel
# (SMS, issue 14) is added here and in the sender, with no change to any use case.
CHANNELS: tuple[Channel, ...] = (Channel.TELEGRAM,)


def choose(bound: Iterable[str]) -> Channel | None:
    """The channel a person with addresses on `bound` (channel values) is sent messages by."""
    have = set(bound)
    return next((channel for channel in CHANNELS if channel.value in have), None)


ROLE_LABELS = {
    Role.FARMER: "sender.role_farmer",
    Role.CADRE: "sender.role_cadre",
    Role.TOWNSHIP: "sender.role_township",
    Role.COUNTY: "sender.role_county",
}


async def recipient_unreachable(
    uow: UnitOfWork, clock: Clock, person_id: int, channel: Channel = Channel.TELEGRAM
) -> None:
    """Mark a person who blocked the bot as unreachable and tell their township's staff, once."""
    now = clock.now()
    if not await uow.delivery.mark_unreachable(person_id, channel, now):
        return
    person = await uow.persons.get(person_id)
    if person is None:
        return
    who = person.name if person.role is not Role.FARMER and person.name else text("sender.a_farmer")
    role = text(ROLE_LABELS[person.role])
    for township_id in await uow.delivery.townships_of(person_id):
        for staff in await uow.persons.staff_of_township(township_id):
            if staff.id == person_id:
                continue
            await uow.outbox.add(
                staff.id,
                Outgoing("sender.unreachable", {"name": who, "role": role}),
                key=f"unreachable:{person_id}:{now.isoformat()}:{staff.id}",
                at=now,
            )


MAX_FAILED_LISTED = 20


def reason_key(error: str) -> str:
    """What went wrong, as the catalog key of words staff understand (the raw error stays in the table)."""
    if error.startswith("forbidden"):
        return "sender.reason_blocked"
    if error.startswith("no address"):
        return "sender.reason_not_bound"
    return "sender.reason_error"


def _reason(error: str) -> object:
    return text(reason_key(error))


async def show_failed(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """/failed: township staff see the messages that could not be delivered to their people."""
    now = clock.now()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        await uow.outbox.add(actor.id, Outgoing("sender.staff_only"), at=now)
        return
    failed = await uow.delivery.failed_in_township(actor.township_id, MAX_FAILED_LISTED)
    if not failed:
        await uow.outbox.add(actor.id, Outgoing("sender.none_failed"), at=now)
        return
    for item in failed:
        params = {
            "name": item.person_name or text("sender.a_farmer"),
            "role": text(ROLE_LABELS.get(Role(item.role), "sender.role_farmer")),
            "at": item.at.astimezone(now.tzinfo).strftime("%m-%d %H:%M"),
            "reason": _reason(item.error),
        }
        await uow.outbox.add(actor.id, Outgoing("sender.failed_item", params), at=now)
