"""Township notices: drafted in chat, sent to an audience now or later, acknowledged with 收到.

A draft lives in the `notices` table (status draft, `step` the question asked), so a restart
mid-draft loses nothing. Each recipient's copy is queued with the key notice:<id>:<person>, so
a notice reaches a person once however often sending is retried.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain import buttons as b
from domain.actor import Actor
from domain.messages import Action, Outcome, Outgoing, Queued, text
from domain.model import Audience, Notice, NoticeStatus, NoticeStep, Person, Role, ScheduledItem
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

AUDIENCE_LABELS = {
    Audience.CADRES.value: "notice.audience_cadres",
    Audience.VILLAGES.value: "notice.audience_villages",
    Audience.STAFF.value: "notice.audience_staff",
}


def _ack_action(notice_id: int) -> tuple[tuple[Action, ...], ...]:
    return ((Action(b.NoticeAck(notice_id), label="notice.ack_button"),),)


async def _staff(uow: UnitOfWork, clock: Clock, actor: Actor) -> Person | None:
    if actor.role is not Role.TOWNSHIP or actor.township_id is None:
        await uow.outbox.add(actor.id, Outgoing("notice.not_allowed"), at=clock.now())
        return None
    return actor


async def start(uow: UnitOfWork, clock: Clock, actor: Actor) -> None:
    """/notice: township staff begin a notice; anyone else is told it is not for them."""
    person = await _staff(uow, clock, actor)
    if person is None:
        return
    assert person.township_id is not None
    old = await uow.notices.draft_of(person.id)
    if old is not None:
        await uow.notices.transition(
            old.id, expected=(NoticeStatus.DRAFT,), to=NoticeStatus.CANCELLED, at=clock.now()
        )
    await uow.notices.add_draft(person.township_id, person.id, clock.now())
    await uow.outbox.add(person.id, Outgoing("notice.ask_text", {"max": MAX_BODY}), at=clock.now())


async def cancel(uow: UnitOfWork, clock: Clock, actor: Actor) -> bool:
    """/cancel while drafting a notice: drop the draft. False when there was none."""
    draft = await uow.notices.draft_of(actor.id) if actor else None
    if actor is None or draft is None:
        return False
    await uow.notices.transition(
        draft.id, expected=(NoticeStatus.DRAFT,), to=NoticeStatus.CANCELLED, at=clock.now()
    )
    await uow.outbox.add(actor.id, Outgoing("notice.cancelled"), at=clock.now())
    return True


async def on_text(uow: UnitOfWork, clock: Clock, actor: Actor, raw: str) -> bool:
    """Typed text while drafting: the notice's text or its time. False when no draft is open."""
    draft = await uow.notices.draft_of(actor.id) if actor else None
    if actor is None or draft is None:
        return False
    now = clock.now()
    if draft.step is NoticeStep.TEXT:
        body = raw.strip()
        limit = MAX_CAPTION_BODY if draft.media else MAX_BODY
        if not body or len(body) > limit:
            await uow.outbox.add(
                actor.id, Outgoing("notice.bad_text", {"max": limit, "length": len(body)}), at=now
            )
        elif looks_personal(body):
            # Held back: a public notice must carry no ID or phone number.
            await uow.outbox.add(actor.id, Outgoing("notice.personal_data"), at=now)
        else:
            await uow.notices.update_draft(draft.id, body=body, step=NoticeStep.AUDIENCE.value)
            await _ask_audience(uow, actor, draft.id, now)
    elif draft.step is NoticeStep.TIME:
        when = parse_time(raw, now)
        if when is None:
            await uow.outbox.add(actor.id, Outgoing("notice.bad_time"), at=now)
        elif when <= now:
            await uow.outbox.add(actor.id, Outgoing("notice.time_past"), at=now)
        elif when > now + MAX_AHEAD:
            latest = (now + MAX_AHEAD).strftime("%Y-%m-%d")
            await uow.outbox.add(actor.id, Outgoing("notice.time_too_far", {"latest": latest}), at=now)
        else:
            await uow.notices.update_draft(draft.id, send_at=when, step=NoticeStep.CONFIRM.value)
            await _summary(uow, actor, draft.id, now)
    else:
        await uow.outbox.add(actor.id, Outgoing("notice.use_buttons"), at=now)
    return True


async def on_other(
    uow: UnitOfWork,
    clock: Clock,
    actor: Actor,
    media: dict[str, str] | None = None,
    caption: str | None = None,
) -> bool:
    """A photo or document while writing the notice goes with it (its caption, if any, is the
    text); anything else is refused. False when no draft is open."""
    draft = await uow.notices.draft_of(actor.id) if actor else None
    if actor is None or draft is None:
        return False
    if media is None or draft.step is not NoticeStep.TEXT:
        await uow.outbox.add(actor.id, Outgoing("notice.text_only"), at=clock.now())
        return True
    await uow.notices.update_draft(draft.id, media=media)
    if caption and caption.strip():
        return await on_text(uow, clock, actor, caption)
    await uow.outbox.add(actor.id, Outgoing("notice.ask_caption", {"max": MAX_CAPTION_BODY}), at=clock.now())
    return True


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


async def _ask_audience(uow: UnitOfWork, person: Person, notice_id: int, now: datetime) -> None:
    buttons = tuple(
        (Action(b.NoticeAudience(notice_id, kind), label=AUDIENCE_LABELS[kind.value]),) for kind in Audience
    )
    await uow.outbox.add(person.id, Outgoing("notice.ask_audience", actions=buttons), at=now)


async def _own_draft(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int
) -> tuple[Person, Notice] | None:
    draft = await uow.notices.draft_of(actor.id) if actor else None
    if actor is None or draft is None or draft.id != notice_id:
        return None
    return actor, draft


async def choose_audience(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int, kind: str
) -> Outcome:
    """A press on an audience button of the draft."""
    found = await _own_draft(uow, clock, actor, notice_id)
    if found is None or kind not in {a.value for a in Audience}:
        return Outcome(toast="notice.gone", done=False)
    person, draft = found
    now = clock.now()
    if kind == Audience.VILLAGES.value:
        await uow.notices.update_draft(
            notice_id, audience={"kind": kind, "villages": []}, step=NoticeStep.VILLAGES.value
        )
        await _ask_villages(uow, person, draft.township_id, notice_id, (), now)
    else:
        await uow.notices.update_draft(notice_id, audience={"kind": kind}, step=NoticeStep.WHEN.value)
        await _ask_when(uow, person, notice_id, now)
    return Outcome(locale=person.locale)


async def _ask_villages(
    uow: UnitOfWork,
    person: Person,
    township_id: int,
    notice_id: int,
    chosen: tuple[int, ...],
    now: datetime,
) -> None:
    villages = await uow.notices.township_villages(township_id)
    rows = [
        (Action(b.NoticeVillage(notice_id, v.id), label=("✅ " if v.id in chosen else "") + v.name),)
        for v in villages
    ]
    rows.append((Action(b.NoticeVillagesDone(notice_id), label="notice.villages_done"),))
    await uow.outbox.add(person.id, Outgoing("notice.ask_villages", actions=tuple(rows)), at=now)


async def toggle_village(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int, arg: str
) -> Outcome:
    """Add or remove a village from the draft's audience, or finish choosing ("done")."""
    found = await _own_draft(uow, clock, actor, notice_id)
    if found is None or found[1].step is not NoticeStep.VILLAGES:
        return Outcome(toast="notice.gone", done=False)
    person, draft = found
    now = clock.now()
    chosen = [int(v) for v in draft.audience.get("villages", [])]
    if arg == "done":
        if not chosen:
            return Outcome(toast="notice.villages_none", alert=True, done=False, locale=person.locale)
        await uow.notices.update_draft(notice_id, step=NoticeStep.WHEN.value)
        await _ask_when(uow, person, notice_id, now)
        return Outcome(locale=person.locale)
    village_id = int(arg)
    if village_id not in {v.id for v in await uow.notices.township_villages(draft.township_id)}:
        return Outcome(toast="notice.gone", done=False)
    chosen = [v for v in chosen if v != village_id] if village_id in chosen else [*chosen, village_id]
    await uow.notices.update_draft(notice_id, audience={"kind": Audience.VILLAGES.value, "villages": chosen})
    await _ask_villages(uow, person, draft.township_id, notice_id, tuple(chosen), now)
    return Outcome(locale=person.locale)


async def _ask_when(uow: UnitOfWork, person: Person, notice_id: int, now: datetime) -> None:
    buttons = (
        (
            Action(b.NoticeWhen(notice_id, "now"), label="notice.when_now"),
            Action(b.NoticeWhen(notice_id, "later"), label="notice.when_later"),
        ),
    )
    await uow.outbox.add(person.id, Outgoing("notice.ask_when", actions=buttons), at=now)


async def choose_when(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int, when: str
) -> Outcome:
    """Send now (to the summary) or later (ask the time)."""
    found = await _own_draft(uow, clock, actor, notice_id)
    if found is None or found[1].step is not NoticeStep.WHEN or when not in ("now", "later"):
        return Outcome(toast="notice.gone", done=False)
    person, _ = found
    now = clock.now()
    if when == "later":
        await uow.notices.update_draft(notice_id, step=NoticeStep.TIME.value)
        await uow.outbox.add(person.id, Outgoing("notice.ask_time"), at=now)
    else:
        await uow.notices.update_draft(notice_id, send_at=None, step=NoticeStep.CONFIRM.value)
        await _summary(uow, person, notice_id, now)
    return Outcome(locale=person.locale)


async def audience_of(uow: UnitOfWork, notice: Notice) -> list[Person]:
    """Who a notice goes to (never its author)."""
    kind = notice.audience.get("kind")
    if kind == Audience.CADRES.value:
        people = await uow.notices.cadres_of_township(notice.township_id)
    elif kind == Audience.VILLAGES.value:
        chosen = tuple(int(v) for v in notice.audience.get("villages", []))
        people = await uow.notices.cadres_of_villages(chosen)
    elif kind == Audience.STAFF.value:
        people = await uow.persons.staff_of_township(notice.township_id)
    else:
        people = []
    return [p for p in people if p.id != notice.author_id]


def _when_text(notice: Notice, now: datetime) -> object:
    """The send time in the service's time zone (the clock's), as the staff member typed it."""
    if notice.send_at is None:
        return text("notice.when_now")
    return notice.send_at.astimezone(now.tzinfo).strftime("%Y-%m-%d %H:%M")


async def _audience_label(uow: UnitOfWork, notice: Notice) -> object:
    kind = notice.audience.get("kind", "")
    if kind == Audience.VILLAGES.value:
        chosen = tuple(int(v) for v in notice.audience.get("villages", []))
        return "、".join(v.name for v in await uow.geography.villages(chosen))
    return text(AUDIENCE_LABELS.get(kind, "notice.audience_cadres"))


async def _summary(uow: UnitOfWork, person: Person, notice_id: int, now: datetime) -> None:
    notice = await uow.notices.get(notice_id)
    assert notice is not None
    count = len(await audience_of(uow, notice))
    buttons = (
        (
            Action(b.NoticeSend(notice_id), label="notice.send_button"),
            Action(b.NoticeCancel(notice_id), label="notice.cancel_button"),
        ),
    )
    params = {
        "text": notice.body or "",
        "audience": await _audience_label(uow, notice),
        "count": count,
        "when": _when_text(notice, now),
    }
    await uow.outbox.add(person.id, Outgoing("notice.summary", params, actions=buttons), at=now)


async def confirm(uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int) -> Outcome:
    """Send the draft now, or schedule it for its time."""
    found = await _own_draft(uow, clock, actor, notice_id)
    if found is None or found[1].step is not NoticeStep.CONFIRM:
        return Outcome(toast="notice.gone", done=False)
    person, draft = found
    now = clock.now()
    if not await audience_of(uow, draft):
        return Outcome(toast="notice.nobody", alert=True, done=False, locale=person.locale)
    await uow.notices.update_draft(notice_id, step=NoticeStep.DONE.value)
    if draft.send_at is not None and draft.send_at > now:
        await uow.notices.transition(
            notice_id, expected=(NoticeStatus.DRAFT,), to=NoticeStatus.SCHEDULED, at=now
        )
        await uow.schedule.add(f"notice:{notice_id}", SEND_KIND, draft.send_at, {"notice": notice_id}, now)
        await uow.outbox.add(
            person.id, Outgoing("notice.scheduled", {"when": _when_text(draft, now)}), at=now
        )
        return Outcome(toast="notice.scheduled_toast", locale=person.locale)
    await dispatch(uow, clock, notice_id)
    return Outcome(toast="notice.sent_toast", locale=person.locale)


async def cancel_button(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int
) -> Outcome:
    found = await _own_draft(uow, clock, actor, notice_id)
    if found is None:
        return Outcome(toast="notice.gone", done=False)
    await cancel(uow, clock, actor)
    return Outcome(locale=found[0].locale)


async def send_scheduled(uow: UnitOfWork, clock: Clock, item: ScheduledItem) -> list[Queued]:
    """The schedule's handler for a notice whose time has come (it queues its own messages)."""
    await dispatch(uow, clock, int(item.payload["notice"]))
    return []


async def dispatch(uow: UnitOfWork, clock: Clock, notice_id: int) -> int:
    """Send a notice to its audience; returns how many it went to (0 when already sent)."""
    now = clock.now()
    if not await uow.notices.transition(
        notice_id, expected=(NoticeStatus.DRAFT, NoticeStatus.SCHEDULED), to=NoticeStatus.SENT, at=now
    ):
        return 0
    notice = await uow.notices.get(notice_id)
    assert notice is not None
    people = await audience_of(uow, notice)
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
    buttons = (
        (
            Action(b.NoticeStatus(notice.id), label="notice.refresh_button"),
            Action(b.NoticeRemind(notice.id), label="notice.remind_button"),
        ),
    )
    params = {
        "acked": len(acked),
        "total": len(recipients),
        "missing": names or "—",
        "text": (notice.body or "")[:60],
    }
    await uow.outbox.add(
        person_id, Outgoing("notice.status", params, actions=buttons if missing else ()), at=now, key=key
    )


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


async def show_status(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int
) -> Outcome:
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
    missing = [
        r for r in await uow.notices.recipients(notice_id) if r.acknowledged_at is None
    ]
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
    return Outcome(toast="notice.reminded", params={"count": len(missing)}, locale=person.locale)


async def acknowledge(
    uow: UnitOfWork, clock: Clock, actor: Actor, notice_id: int
) -> Outcome:
    """收到: the recipient confirms they have read the notice."""
    recorded = await uow.notices.acknowledge(notice_id, actor.id, clock.now())
    if recorded is None:
        return Outcome(toast="notice.gone", done=False, locale=actor.locale)
    if not recorded:
        return Outcome(toast="notice.already_acknowledged", locale=actor.locale)
    return Outcome(toast="notice.acknowledged", locale=actor.locale)
