"""Migration 0013: each declaration records the front end it came through; earlier ones are
filled in the way the console used to tell (a declarant with a chat: "chat")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.migrate import upgrade
from tests.storage.test_migration_conversations import migrated_to

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def at_0012(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with migrated_to("0012", request.param, tmp_path) as engine:
        yield engine


async def test_earlier_declarations_are_chat_when_the_declarant_has_a_chat(at_0012: AsyncEngine) -> None:
    async with at_0012.begin() as c:
        await c.execute(text("INSERT INTO townships (id, name) VALUES (1, '青山镇')"))
        await c.execute(
            text("INSERT INTO villages (id, code, name, township_id) VALUES (1, 'QS01', '李家村', 1)")
        )
        for pid in (1, 2, 3):  # 1 has a chat; 2 only a number for texts; 3 nothing
            await c.execute(
                text("INSERT INTO persons (id, role, created_at) VALUES (:id, 'farmer', :at)"),
                {"id": pid, "at": AT},
            )
        accounts = (
            "INSERT INTO channel_accounts (person_id, channel, address, bound_at) VALUES (:p, :c, :a, :at)"
        )
        await c.execute(text(accounts), {"p": 1, "c": "telegram", "a": "5001", "at": AT})
        await c.execute(text(accounts), {"p": 2, "c": "sms", "a": "13912345678", "at": AT})
        for did in (1, 2, 3):
            await c.execute(
                text(
                    "INSERT INTO declarations (id, receipt, village_id, declared_by, head_name, phone,"
                    " risk_type, description, status, created_at, updated_at) VALUES (:id, :r, 1, :id,"
                    " '王大山', '+8613912345678', 'illness', '老伴住院', 'submitted', :at, :at)"
                ),
                {"id": did, "r": f"R{did}", "at": AT},
            )

    await upgrade(at_0012)

    async with at_0012.connect() as c:
        found = {i: via for i, via in await c.execute(text("SELECT id, via FROM declarations ORDER BY id"))}
        assert found == {1: "chat", 2: "web", 3: "web"}
        await c.execute(
            text(
                "INSERT INTO declarations (id, receipt, village_id, declared_by, head_name, phone,"
                " risk_type, description, status, created_at, updated_at) VALUES (4, 'R4', 1, 3,"
                " '王大山', '+8613912345670', 'illness', '老伴住院', 'submitted', :at, :at)"
            ),
            {"at": AT},
        )
        assert await c.scalar(text("SELECT via FROM declarations WHERE id = 4")) == "chat"
