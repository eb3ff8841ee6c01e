"""Use cases tried as an attacker would, on the real storage: old invites after a newer one."""

from __future__ import annotations

from datetime import timedelta

from domain import people
from domain.model import Channel
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, seed_roster

TG = Channel.TELEGRAM


def _token(invite: people.IssuedInvite) -> str:
    return invite.payload[len(people.INVITE_PREFIX) :]


async def test_an_older_invite_stops_working_once_a_newer_one_is_issued_or_redeemed(
    uow: SqlUnitOfWorkFactory, clock: FakeClock
) -> None:
    await seed_roster(uow)
    async with uow() as work:
        first = await people.issue_invite(work, clock, "13800000001")  # sent by SMS, never opened
        second = await people.issue_invite(work, clock, "13800000001")  # sent again by WeChat
        third = await people.issue_invite(work, clock, "13800000001")
        await work.commit()
    clock.advance(minutes=5)
    async with uow() as work:
        outcome = await people.redeem_invite(work, clock, TG, "2001", _token(third))
        await work.commit()
    assert outcome.done
    clock.advance(hours=1)
    # Someone who got hold of one of the earlier links (a shared phone, a forwarded message)
    # must not take the cadre's account over: it is bound to the chat that opened the newest one.
    for old, address in ((first, "6666"), (second, "6667")):
        async with uow() as work:
            outcome = await people.redeem_invite(work, clock, TG, address, _token(old))
            await work.commit()
        assert not outcome.done
    async with uow() as work:
        cadre = await work.persons.by_address(TG, "2001")
        assert cadre is not None and cadre.name == "张伟"
        for address in ("6666", "6667"):
            stranger = await work.persons.by_address(TG, address)
            assert stranger is not None and stranger.id != cadre.id
    # A newer invite still moves the cadre to a new phone, as it should.
    async with uow() as work:
        fourth = await people.issue_invite(work, clock, "13800000001", ttl=timedelta(days=1))
        await work.commit()
    async with uow() as work:
        assert (await people.redeem_invite(work, clock, TG, "2002", _token(fourth))).done
        await work.commit()
    async with uow() as work:
        moved = await work.persons.by_address(TG, "2002")
        assert moved is not None and moved.name == "张伟"
        assert await work.persons.by_address(TG, "2001") is None
