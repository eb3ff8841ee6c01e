"""Township notices: written in chat, sent to an audience now or later, acknowledged with 收到.

The notice being written is the writer's conversation (flow notice: its text, photo, audience and
time are the conversation's data), so a restart mid-way loses nothing; the notice itself is
stored once it is sent or scheduled. Each recipient's copy is queued with the key
notice:<id>:<person>, so a notice reaches a person once however often sending is retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain import buttons as b
from domain.actor import Actor
from domain.dialogue import Kind, Said, Start, Tools, begin
from domain.messages import Action, Outcome, Outgoing, Queued, text
from domain.model import (
    Audience,
    Conversation,
    Flow,
    Notice,
    NoticeStatus,
    NoticeStep,
    Person,
    Role,
    ScheduledItem,
)
from domain.personal_data import looks_personal  # notices must carry no ID or phone number
from domain.ports import Clock, UnitOfWork

SEND_KIND = "send-notice"
MAX_BODY = 2000
MAX_CAPTION_BODY = 900  # with a photo or document the text is its caption (Telegram: 1024)
MAX_MISSING_LISTED = 30
MAX_AHEAD = timedelta(days=366)  # a notice for later than a year ahead is a typing slip (9999-12-31)
# One reminder round a notice per this time, whoever presses 提醒未确认的人 and however often:
# every round is a message to each cadre who has not confirmed.
REMIND_EVERY = timedelta(hours=1)
STEPS = tuple(step.value for step in NoticeStep if step is not NoticeStep.DONE)

AUDIENCE_LABELS = {
    Audience.CADRES.value: "notice.audience_cadres",
    Audience.VILLAGES.value: "notice.audience_villages",
    Audience.STAFF.value: "notice.audience_staff",
}


def _ack_action(notice_id: int) -> tuple[tuple[Action, ...], ...]:
    return ((Action(b.NoticeAck(notice_id), label="notice.ack_button"),),)


async def start(uow: UnitOfWork, clock: Clock, actor: Actor) -> Outcome:
    """/notice: township staff begin a notice; anyone else is told it is not for them."""
    now = clock.now()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        await uow.outbox.add(actor.id, Outgoing("notice.not_allowed"), at=now)
        return Outcome(locale=actor.locale, done=False)
    data = {"township_id": actor.township_id, "audience": {}}
    conv = await begin(uow, clock, actor, Start(Flow.NOTICE, {}), NoticeStep.TEXT.value, data)
    if conv is not None:
        await uow.outbox.add(actor.id, await ask(uow, clock, conv), at=now)
    return Outcome(locale=actor.locale)


async def ask(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    """The question the notice being written waits on."""
    step, data = NoticeStep(conv.step), conv.data
    if step is NoticeStep.TEXT:
        if data.get("media"):
            return Outgoing("notice.ask_caption", {"max": MAX_CAPTION_BODY})
        return Outgoing("notice.ask_text", {"max": MAX_BODY})
    if step is NoticeStep.AUDIENCE:
        kinds = tuple(
            (Action(b.NoticeAudience(conv.id, kind), label=AUDIENCE_LABELS[kind.value]),) for kind in Audience
        )
        return Outgoing("notice.ask_audience", actions=kinds)
    if step is NoticeStep.VILLAGES:
        chosen = {int(v) for v in data.get("audience", {}).get("villages", [])}
        villages = await uow.notices.township_villages(int(data["township_id"]))
        rows = [
            (Action(b.NoticeVillage(conv.id, v.id), label=("✅ " if v.id in chosen else "") + v.name),)
            for v in villages
        ]
        rows.append((Action(b.NoticeVillagesDone(conv.id), label="notice.villages_done"),))
        return Outgoing("notice.ask_villages", actions=tuple(rows))
    if step is NoticeStep.WHEN:
        when = (
            Action(b.NoticeWhen(conv.id, "now"), label="notice.when_now"),
            Action(b.NoticeWhen(conv.id, "later"), label="notice.when_later"),
        )
        return Outgoing("notice.ask_when", actions=(when,))
    if step is NoticeStep.TIME:
        return Outgoing("notice.ask_time")
    return await _summary(uow, clock, conv)


async def _move(
    uow: UnitOfWork, clock: Clock, actor: Actor, conv: Conversation, step: NoticeStep, **changes: Any
) -> None:
    """Store the answer, go to `step` and ask its question."""
    data = {**conv.data, **changes}
    await uow.conversations.update(conv.id, step.value, data, clock.now())
    moved = Conversation(conv.id, conv.person_id, conv.flow, step.value, data, clock.now())
    await uow.outbox.add(actor.id, await ask(uow, clock, moved), at=clock.now())


async def answer(uow: UnitOfWork, tools: Tools, actor: Actor, conv: Conversation, said: Said) -> None:
    """A message while writing a notice: its text or its time typed; a photo or document to go with
    it (its caption, if any, is the text); anything else is refused."""
    clock = tools.clock
    now = clock.now()
    step = NoticeStep(conv.step)
    if said.kind in (Kind.PHOTO, Kind.DOCUMENT) and said.ref and step is NoticeStep.TEXT:
        media = {"kind": said.kind.value, "file_id": said.ref}
        if said.text.strip():
            await _take_text(uow, clock, actor, conv, said.text, media)
        else:
            await uow.conversations.update(conv.id, conv.step, {**conv.data, "media": media}, now)
            await uow.outbox.add(actor.id, Outgoing("notice.ask_caption", {"max": MAX_CAPTION_BODY}), at=now)
    elif said.kind is not Kind.TEXT:
        await uow.outbox.add(actor.id, Outgoing("notice.text_only"), at=now)
    elif step is NoticeStep.TEXT:
        await _take_text(uow, clock, actor, conv, said.text, conv.data.get("media"))
    elif step is NoticeStep.TIME:
        when = check_time(parse_time(said.text, now), now)
        if isinstance(when, Outgoing):
            await uow.outbox.add(actor.id, when, at=now)
        else:
            await _move(uow, clock, actor, conv, NoticeStep.CONFIRM, send_at=when.isoformat())
    else:
        await uow.outbox.add(actor.id, Outgoing("notice.use_buttons"), at=now)


async def _take_text(
    uow: UnitOfWork, clock: Clock, actor: Actor, conv: Conversation, raw: str, media: dict[str, str] | None
) -> None:
    now = clock.now()
    body = check_body(raw, media)
    if isinstance(body, Outgoing):
        await uow.conversations.update(conv.id, conv.step, {**conv.data, "media": media}, now)
        await uow.outbox.add(actor.id, body, at=now)
    else:
        await _move(uow, clock, actor, conv, NoticeStep.AUDIENCE, body=body, media=media)


def check_body(raw: str, media: dict[str, str] | None) -> str | Outgoing:
    """A notice's text, trimmed; or why it is refused: empty, too long, or carrying an ID or phone
    number (held back: a notice goes to many people). The chat and the console check with it."""
    body = raw.strip()
    limit = MAX_CAPTION_BODY if media else MAX_BODY
    if not body or len(body) > limit:
        return Outgoing("notice.bad_text", {"max": limit, "length": len(body)})
    if looks_personal(body):
        return Outgoing("notice.personal_data")
    return body


def check_time(when: datetime | None, now: datetime) -> datetime | Outgoing:
    """A send time read (None: unreadable) if it is to come and at most MAX_AHEAD away; or why not."""
    if when is None:
        return Outgoing("notice.bad_time")
    if when <= now:
        return Outgoing("notice.time_past")
    if when > now + MAX_AHEAD:
        return Outgoing("notice.time_too_far", {"latest": (now + MAX_AHEAD).strftime("%Y-%m-%d")})
    return when


def parse_time(raw: str, now: datetime) -> datetime | None:
    """'2026-12-01 09:00', '12-01 09:00' or '09:00' (today, or tomorrow once passed)."""
    value = raw.strip().replace("：", ":").replace("/", "-")
    for form, has_year, has_date in (
        ("%Y-%m-%d %H:%M", True, True),
        ("%m-%d %H:%M", False, True),
        ("%H:%M", False, False),
    ):
        try:
            parsed = datetime.strptime(value, form)
        except ValueError:
            continue
        when = now.replace(
            year=parsed.year if has_year else now.year,
            month=parsed.month if has_date else now.month,
            day=parsed.day if has_date else now.day,
            hour=parsed.hour,
            minute=parsed.minute,
            second=0,
            microsecond=0,
        )
        if not has_date and when <= now:
            when += timedelta(days=1)
        return when
    return None


async def _own_draft(uow: UnitOfWork, actor: Actor, conv_id: int, step: NoticeStep) -> Conversation | None:
    """The notice the actor is writing, when the button is of it and of the question it is at."""
    conv = await uow.conversations.get(actor.id)
    if conv is None or conv.id != conv_id or conv.flow is not Flow.NOTICE or conv.step != step.value:
        return None
    return conv


async def choose_audience(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, kind: str) -> Outcome:
    """A press on an audience button of the notice being written."""
    conv = await _own_draft(uow, actor, conv_id, NoticeStep.AUDIENCE)
    if conv is None or kind not in {a.value for a in Audience}:
        return Outcome(toast="notice.gone", done=False)
    if kind == Audience.VILLAGES.value:
        await _move(uow, clock, actor, conv, NoticeStep.VILLAGES, audience={"kind": kind, "villages": []})
    else:
        await _move(uow, clock, actor, conv, NoticeStep.WHEN, audience={"kind": kind})
    return Outcome(locale=actor.locale)


async def toggle_village(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, arg: str) -> Outcome:
    """Add or remove a village from the notice's audience, or finish choosing ("done")."""
    conv = await _own_draft(uow, actor, conv_id, NoticeStep.VILLAGES)
    if conv is None:
        return Outcome(toast="notice.gone", done=False)
    audience = dict(conv.data.get("audience") or {})
    chosen = [int(v) for v in audience.get("villages", [])]
    if arg == "done":
        if not chosen:
            return Outcome(toast="notice.villages_none", alert=True, done=False, locale=actor.locale)
        await _move(uow, clock, actor, conv, NoticeStep.WHEN)
        return Outcome(locale=actor.locale)
    village_id = int(arg)
    if village_id not in {v.id for v in await uow.notices.township_villages(int(conv.data["township_id"]))}:
        return Outcome(toast="notice.gone", done=False)
    chosen = [v for v in chosen if v != village_id] if village_id in chosen else [*chosen, village_id]
    await _move(
        uow,
        clock,
        actor,
        conv,
        NoticeStep.VILLAGES,
        audience={"kind": Audience.VILLAGES.value, "villages": chosen},
    )
    return Outcome(locale=actor.locale)


async def choose_when(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int, when: str) -> Outcome:
    """Send now (to the summary) or later (ask the time)."""
    conv = await _own_draft(uow, actor, conv_id, NoticeStep.WHEN)
    if conv is None or when not in ("now", "later"):
        return Outcome(toast="notice.gone", done=False)
    if when == "later":
        await _move(uow, clock, actor, conv, NoticeStep.TIME)
    else:
        await _move(uow, clock, actor, conv, NoticeStep.CONFIRM, send_at=None)
    return Outcome(locale=actor.locale)


async def audience_of(
    uow: UnitOfWork, township_id: int, audience: dict[str, Any], author_id: int
) -> list[Person]:
    """Who a notice goes to (never its author)."""
    kind = audience.get("kind")
    if kind == Audience.CADRES.value:
        people = await uow.notices.cadres_of_township(township_id)
    elif kind == Audience.VILLAGES.value:
        chosen = tuple(int(v) for v in audience.get("villages", []))
        people = await uow.notices.cadres_of_villages(chosen)
    elif kind == Audience.STAFF.value:
        people = await uow.persons.staff_of_township(township_id)
    else:
        people = []
    return [p for p in people if p.id != author_id]


def _when_text(send_at: datetime | None, now: datetime) -> object:
    """The send time in the service's time zone (the clock's), as the staff member typed it."""
    if send_at is None:
        return text("notice.when_now")
    return send_at.astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M")


def _send_at(data: dict[str, Any]) -> datetime | None:
    raw = data.get("send_at")
    return datetime.fromisoformat(raw) if raw else None


async def _audience_label(uow: UnitOfWork, audience: dict[str, Any]) -> object:
    kind = audience.get("kind", "")
    if kind == Audience.VILLAGES.value:
        chosen = tuple(int(v) for v in audience.get("villages", []))
        return "、".join(v.name for v in await uow.geography.villages(chosen))
    return text(AUDIENCE_LABELS.get(kind, "notice.audience_cadres"))


async def _summary(uow: UnitOfWork, clock: Clock, conv: Conversation) -> Outgoing:
    data = conv.data
    audience = dict(data.get("audience") or {})
    count = len(await audience_of(uow, int(data["township_id"]), audience, conv.person_id))
    buttons = (
        (
            Action(b.NoticeSend(conv.id), label="notice.send_button"),
            Action(b.Cancel(conv.id), label="notice.cancel_button"),
        ),
    )
    params = {
        "text": data.get("body") or "",
        "audience": await _audience_label(uow, audience),
        "count": count,
        "when": _when_text(_send_at(data), clock.now()),
    }
    return Outgoing("notice.summary", params, actions=buttons)


async def confirm(uow: UnitOfWork, clock: Clock, actor: Actor, conv_id: int) -> Outcome:
    """Send the notice now, or schedule it for its time."""
    conv = await _own_draft(uow, actor, conv_id, NoticeStep.CONFIRM)
    if conv is None:
        return Outcome(toast="notice.gone", done=False)
    now = clock.now()
    data = conv.data
    township_id, audience = int(data["township_id"]), dict(data.get("audience") or {})
    if not await audience_of(uow, township_id, audience, actor.id):
        return Outcome(toast="notice.nobody", alert=True, done=False, locale=actor.locale)
    if not await uow.conversations.finish(conv.id):
        return Outcome(toast="notice.gone", done=False)
    send_at = _send_at(data)
    _, scheduled = await publish(
        uow, clock, actor, township_id, body=data.get("body") or "", audience=audience,
        media=data.get("media"), send_at=send_at,
    )  # fmt: skip
    if scheduled and send_at is not None:
        await uow.outbox.add(
            actor.id, Outgoing("notice.scheduled", {"when": _when_text(send_at, now)}), at=now
        )
        return Outcome(toast="notice.scheduled_toast", locale=actor.locale)
    return Outcome(toast="notice.sent_toast", locale=actor.locale)


async def publish(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    township_id: int,
    *,
    body: str,
    audience: dict[str, Any],
    media: dict[str, str] | None,
    send_at: datetime | None,
) -> tuple[Notice, bool]:
    """Store a checked notice and send it now, or schedule it for its time (then True)."""
    now = clock.now()
    notice = await uow.notices.add(
        township_id, actor.id, body=body, audience=audience, media=media, send_at=send_at, at=now
    )
    if send_at is not None and send_at > now:
        await uow.schedule.add(f"notice:{notice.id}", SEND_KIND, send_at, {"notice": notice.id}, now)
        return notice, True
    await dispatch(uow, clock, notice.id)
    return notice, False


@dataclass(frozen=True)
class Composed:
    """A notice written at once (the console's form): stored, and sent or scheduled; or refused,
    with why by field ("body", "audience", "villages", "send_at"; "" the whole); `foreign` when a
    village named is none of the township's (as if it did not exist: nothing is said of it)."""

    notice: Notice | None = None
    scheduled: bool = False
    problems: dict[str, Outgoing] = field(default_factory=dict)
    foreign: bool = False


async def compose(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    *,
    body: str,
    audience: str,
    villages: Sequence[int] = (),
    send_at: str | None = None,
    media: dict[str, str] | None = None,
) -> Composed:
    """What the conversation's confirm does, with every answer given at once and checked as the
    chat checks each: the text, the audience (an `Audience` value; `villages` for "villages"), and
    the time (None: now; else read as the chat reads a typed one, bounded as it bounds it)."""
    now = clock.now()
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        return Composed(problems={"": Outgoing("notice.not_allowed")})
    township_id = actor.township_id
    known = {v.id for v in await uow.notices.township_villages(township_id)}
    if any(v not in known for v in villages):
        return Composed(foreign=True)
    problems: dict[str, Outgoing] = {}
    checked = check_body(body, media)
    if isinstance(checked, Outgoing):
        problems["body"] = checked
    chosen: dict[str, Any] = {"kind": audience}
    if audience not in {a.value for a in Audience}:
        problems["audience"] = Outgoing("notice.ask_audience")
    elif audience == Audience.VILLAGES.value:
        chosen["villages"] = sorted(set(villages))
        if not villages:
            problems["villages"] = Outgoing("notice.villages_none")
    when = None if send_at is None else check_time(parse_time(send_at, now), now)
    if isinstance(when, Outgoing):
        problems["send_at"] = when
    if "audience" not in problems and "villages" not in problems:
        if not await audience_of(uow, township_id, chosen, actor.id):
            problems["audience"] = Outgoing("notice.nobody")
    if problems or isinstance(checked, Outgoing) or isinstance(when, Outgoing):
        return Composed(problems=problems)
    notice, scheduled = await publish(
        uow, clock, actor, township_id, body=checked, audience=chosen, media=media, send_at=when
    )
    return Composed(notice, scheduled)


async def send_scheduled(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler for a notice whose time has come (it queues its own messages)."""
    await dispatch(uow, clock, int(item.payload["notice"]))
    return []


async def dispatch(uow: UnitOfWork, clock: Clock, notice_id: int) -> int:
    """Send a notice to its audience; returns how many it went to (0 when already sent)."""
    now = clock.now()
    if not await uow.notices.transition(
        notice_id, expected=(NoticeStatus.SCHEDULED,), to=NoticeStatus.SENT, at=now
    ):
        return 0
    notice = await uow.notices.get(notice_id)
    assert notice is not None
    people = await audience_of(uow, notice.township_id, notice.audience, notice.author_id)
    await uow.notices.add_recipients(notice_id, [p.id for p in people])
    township = await _township_name(uow, notice)
    message = Outgoing(
        "notice.message",
        {"township": township, "text": notice.body or ""},
        actions=_ack_action(notice_id),
        media=notice.media,
    )
    for person in people:
        await uow.outbox.add(person.id, message, key=f"notice:{notice_id}:{person.id}", at=now)
    await _status_to(uow, notice, notice.author_id, now, key=f"notice-sent:{notice_id}")
    return len(people)


async def _township_name(uow: UnitOfWork, notice: Notice) -> str:
    author = await uow.persons.get(notice.author_id)
    villages = await uow.notices.township_villages(notice.township_id)
    if villages:
        return villages[0].township_name
    return (author.name if author else None) or ""


async def _status_to(
    uow: UnitOfWork, notice: Notice, person_id: int, now: datetime, key: str | None = None
) -> None:
    recipients = await uow.notices.recipients(notice.id)
    acked = [r for r in recipients if r.acknowledged_at is not None]
    missing = [r for r in recipients if r.acknowledged_at is None]
    names = "、".join(
        (r.person.name or "?") + ("" if r.reachable else "⚠") for r in missing[:MAX_MISSING_LISTED]
    )
    if len(missing) > MAX_MISSING_LISTED:
        names += " …"
    params = {
        "acked": len(acked),
        "total": len(recipients),
        "missing": names or "—",
        "text": (notice.body or "")[:60],
    }
    buttons = _status_buttons(notice.id, bool(missing))
    await uow.outbox.add(person_id, Outgoing("notice.status", params, actions=buttons), at=now, key=key)


def _status_buttons(notice_id: int, missing: bool) -> tuple[tuple[Action, ...], ...]:
    """刷新 always (the status may be asked for at any time); 提醒 while someone has not confirmed."""
    refresh = Action(b.NoticeStatus(notice_id), label="notice.refresh_button")
    if not missing:
        return ((refresh,),)
    return ((refresh, Action(b.NoticeRemind(notice_id), label="notice.remind_button")),)


async def _staff_notice(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int
) -> tuple[Person, Notice] | None:
    notice = await uow.notices.get(notice_id)
    if (
        actor is None
        or notice is None
        or actor.role is not Role.TOWNSHIP
        or actor.township_id != notice.township_id
        or notice.status is not NoticeStatus.SENT
    ):
        return None
    return actor, notice


async def show_status(uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int) -> Outcome:
    """Who has acknowledged a notice, x of y, and who has not."""
    found = await _staff_notice(uow, clock, actor, notice_id)
    if found is None:
        return Outcome(toast="notice.gone", done=False)
    person, notice = found
    await _status_to(uow, notice, person.id, clock.now())
    return Outcome(locale=person.locale)


async def remind(uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int) -> Outcome:
    """Remind, once more, everyone who has not acknowledged the notice."""
    found = await _staff_notice(uow, clock, actor, notice_id)
    if found is None:
        return Outcome(toast="notice.gone", done=False)
    person, notice = found
    now = clock.now()
    if not await uow.limits.hit(f"notice-remind:{notice_id}", limit=1, window=REMIND_EVERY, now=now):
        minutes = int(REMIND_EVERY.total_seconds() // 60)
        return Outcome(
            toast="notice.remind_wait",
            params={"minutes": minutes},
            alert=True,
            done=False,
            locale=person.locale,
        )
    missing = [r for r in await uow.notices.recipients(notice_id) if r.acknowledged_at is None]
    round_ = await uow.notices.next_remind_round(notice_id)
    township = await _township_name(uow, notice)
    message = Outgoing(
        "notice.reminder",
        {"township": township, "text": notice.body or ""},
        actions=_ack_action(notice_id),
        media=notice.media,
    )
    for recipient in missing:
        await uow.outbox.add(
            recipient.person.id,
            message,
            key=f"notice-remind:{notice_id}:{round_}:{recipient.person.id}",
            at=now,
        )
    # The status pressed stays as it is, its 刷新 and 提醒 with it: reminding answers no question of
    # it, and the staff member refreshes it to see who confirms.
    return Outcome(toast="notice.reminded", params={"count": len(missing)}, locale=person.locale, done=False)


async def acknowledge(uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int) -> Outcome:
    """收到: the recipient confirms they have read the notice."""
    recorded = await uow.notices.acknowledge(notice_id, actor.id, clock.now())
    if recorded is None:
        return Outcome(toast="notice.gone", done=False, locale=actor.locale)
    if not recorded:
        return Outcome(toast="notice.already_acknowledged", locale=actor.locale)
    recipients = await uow.notices.recipients(notice_id)
    notice = await uow.notices.get(notice_id)
    if notice is not None and all(r.acknowledged_at is not None for r in recipients):
        # The last to confirm: the author hears it once (keyed), with 刷新 to see the status.
        params = {"text": (notice.body or "")[:60], "total": len(recipients)}
        await uow.outbox.add(
            notice.author_id,
            Outgoing("notice.all_confirmed", params, actions=_status_buttons(notice_id, False)),
            key=f"notice:{notice_id}:all-confirmed",
            at=clock.now(),
        )
    return Outcome(toast="notice.acknowledged", locale=actor.locale)
