"""Which channel a message goes by, and what happens when a message cannot be delivered.

A message addresses a person, never a channel: the outbox sends it by the first channel of
`CHANNELS` the person has an address on. Use cases never name a channel; this module and the
front ends (which learn who an address is) are the only places that do.
"""

from __future__ import annotations

from collections.abc import Iterable

from domain import validation
from domain.actor import Actor
from domain.messages import Outgoing, text
from domain.model import Channel, Person, Role
from domain.ports import Clock, UnitOfWork

# Every channel a message can go by, in order of preference: a chat first, then a text message.
PREFERENCE: tuple[Channel, ...] = (Channel.TELEGRAM, Channel.SMS)
# Those switched on in this process (the wiring's `switch_on`, at start): SMS only when a provider
# is configured. A channel that is off is as if no one had an address on it: nothing is queued.
CHANNELS: tuple[Channel, ...] = (Channel.TELEGRAM,)


def switch_on(*channels: Channel) -> tuple[Channel, ...]:
    """Use Telegram and `channels` from now on (in the order of PREFERENCE); returns what was on
    before, to put back (tests)."""
    global CHANNELS
    before = CHANNELS
    wanted = {Channel.TELEGRAM, *channels}
    CHANNELS = tuple(channel for channel in PREFERENCE if channel in wanted)
    return before


def restore(channels: tuple[Channel, ...]) -> None:
    global CHANNELS
    CHANNELS = channels


def on(channel: Channel) -> bool:
    return channel in CHANNELS


def choose(bound: Iterable[str]) -> Channel | None:
    """The channel a person with addresses on `bound` (channel values) is sent messages by."""
    have = set(bound)
    return next((channel for channel in CHANNELS if channel.value in have), None)


def texts_on() -> bool:
    """Whether text messages (SMS) can be sent: a provider is configured."""
    return Channel.SMS in CHANNELS


def text_address(phone: str) -> str | None:
    """The address texts go to for a stored number (E.164, +86...): its 11 digits, when it is a
    mainland mobile; None for a fixed line, which no text reaches."""
    if not validation.is_mobile(phone):
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits[2:] if digits.startswith("86") and len(digits) == 13 else None


async def reach_by_text(uow: UnitOfWork, clock: Clock, person_id: int, phone: str) -> bool:
    """The household `person_id` agreed to hear of its case by text message at `phone` (a checked
    number, E.164): from now on its messages that have a text form go there, unless it has a
    chat. False (nothing bound) when texts are off or the number is not a mobile."""
    address = text_address(phone)
    if not texts_on() or address is None:
        return False
    await uow.persons.bind(person_id, Channel.SMS, address, clock.now())
    return True


async def text_holder(uow: UnitOfWork, phone: str) -> Person | None:
    """The person whose text-message address is `phone` (a household that declared before)."""
    address = text_address(phone)
    return await uow.persons.by_address(Channel.SMS, address) if address else None


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
    if error.startswith("sms undelivered"):
        return "sender.reason_sms_undelivered"  # the provider's receipt: the phone did not get it
    if error.startswith("sms"):
        return "sender.reason_sms_failed"
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
