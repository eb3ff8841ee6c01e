"""What happens when a message cannot be delivered to a person."""

from __future__ import annotations

from domain.messages import Outgoing, text
from domain.model import Channel, Role
from domain.notification_ports import NotificationsUnitOfWork
from domain.ports import Clock

ROLE_LABELS = {
    Role.FARMER: "sender.role_farmer",
    Role.CADRE: "sender.role_cadre",
    Role.TOWNSHIP: "sender.role_township",
}


async def recipient_unreachable(
    uow: NotificationsUnitOfWork, clock: Clock, person_id: int, channel: Channel = Channel.TELEGRAM
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
