"""What happens when a message cannot be delivered to a person."""

from __future__ import annotations

from domain.messages import Outgoing, text
from domain.model import Channel, Role
from domain.ports import Clock, UnitOfWork

ROLE_LABELS = {
    Role.FARMER: "sender.role_farmer",
    Role.CADRE: "sender.role_cadre",
    Role.TOWNSHIP: "sender.role_township",
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


def _reason(error: str) -> object:
    """What went wrong, in words staff understand (the raw error stays in the table)."""
    if error.startswith("forbidden"):
        return text("sender.reason_blocked")
    if error.startswith("no address"):
        return text("sender.reason_not_bound")
    return text("sender.reason_error")


async def show_failed(uow: UnitOfWork, clock: Clock, channel: Channel, address: str) -> None:
    """/failed: township staff see the messages that could not be delivered to their people."""
    from domain.people import person_for

    person = await person_for(uow, channel, address, clock)
    now = clock.now()
    if person.role is not Role.TOWNSHIP or person.township_id is None:
        await uow.outbox.add(person.id, Outgoing("sender.staff_only"), at=now)
        return
    failed = await uow.delivery.failed_in_township(person.township_id, MAX_FAILED_LISTED)
    if not failed:
        await uow.outbox.add(person.id, Outgoing("sender.none_failed"), at=now)
        return
    for item in failed:
        params = {
            "name": item.person_name or text("sender.a_farmer"),
            "role": text(ROLE_LABELS.get(Role(item.role), "sender.role_farmer")),
            "at": item.at.astimezone(now.tzinfo).strftime("%m-%d %H:%M"),
            "reason": _reason(item.error),
        }
        await uow.outbox.add(person.id, Outgoing("sender.failed_item", params), at=now)
