"""Migration 0009: notice, report and ledger drafts become rows of the one conversations table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.migrate import alembic_config, upgrade
from tests.support import database


def _to(revision: str) -> Any:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    return run


@asynccontextmanager
async def migrated_to(revision: str, kind: str, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database (`kind`: sqlite or postgresql) migrated up to `revision`."""
    async with database(kind, tmp_path) as engine:
        async with engine.begin() as connection:
            await connection.run_sync(_to(revision))
        yield engine


@pytest.fixture(params=["sqlite", "postgresql"])
async def at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A database migrated up to 0008, before the conversations were one table."""
    async with migrated_to("0008", request.param, tmp_path) as engine:
        yield engine


def _at(hour: int) -> datetime:
    return datetime(2026, 12, 1, hour, 0, tzinfo=UTC)


async def _seed(engine: AsyncEngine) -> None:
    """Four people: 1 has a conversation (10:00) and a newer ledger draft (11:00) and an older notice
    draft (09:00); 2 a report draft; 3 a notice draft; 4 an older ledger draft (08:00) than its
    conversation (12:00). A sent notice stays as it is."""
    async with engine.begin() as c:
        await c.execute(text("INSERT INTO townships (id, name) VALUES (1, '青山镇')"))
        await c.execute(
            text("INSERT INTO villages (id, code, name, township_id) VALUES (1, 'QS01', '李家村', 1)")
        )
        for pid in (1, 2, 3, 4):
            await c.execute(
                text(
                    "INSERT INTO persons (id, role, township_id, created_at) VALUES (:id, 'township', 1, :at)"
                ),
                {"id": pid, "at": _at(1)},
            )
        await c.execute(
            text(
                "INSERT INTO campaigns (id, township_id, name, reports, created_at) "
                "VALUES (1, 1, '集中排查', :reports, :at)"
            ),
            {"reports": json.dumps({"kind": "half-monthly"}), "at": _at(1)},
        )
        conversation = (
            "INSERT INTO conversations (person_id, flow, step, data, created_at, updated_at) "
            "VALUES (:p, 'intake', 'name', :data, :at, :at)"
        )
        await c.execute(text(conversation), {"p": 1, "data": json.dumps({"village_id": 1}), "at": _at(10)})
        await c.execute(text(conversation), {"p": 4, "data": json.dumps({"village_id": 1}), "at": _at(12)})
        ledger = (
            "INSERT INTO ledger_drafts (person_id, step, data, updated_at) VALUES (:p, :step, :data, :at)"
        )
        await c.execute(
            text(ledger),
            {"p": 1, "step": "measure", "data": json.dumps({"village": 1, "what": "危房"}), "at": _at(11)},
        )
        await c.execute(
            text(ledger), {"p": 4, "step": "what", "data": json.dumps({"village": 1}), "at": _at(8)}
        )
        await c.execute(
            text(
                "INSERT INTO report_drafts (person_id, campaign_id, period, village_id, step, data, "
                "updated_at) VALUES (2, 1, :period, 1, 'new_risks', :data, :at)"
            ),
            {"period": datetime(2026, 12, 10).date(), "data": json.dumps({"visited": 12}), "at": _at(9)},
        )
        notice = (
            "INSERT INTO notices (id, township_id, author_id, status, step, body, audience, send_at, "
            "created_at, remind_rounds) "
            "VALUES (:id, 1, :author, :status, :step, :body, :audience, :send_at, :at, 0)"
        )
        await c.execute(
            text(notice),
            {"id": 1, "author": 1, "status": "draft", "step": "text", "body": None, "audience": "{}",
             "send_at": None, "at": _at(9)},
        )  # fmt: skip
        await c.execute(
            text(notice),
            {"id": 2, "author": 3, "status": "draft", "step": "confirm", "body": "冬季防火",
             "audience": json.dumps({"kind": "cadres"}), "send_at": _at(20), "at": _at(9)},
        )  # fmt: skip
        await c.execute(
            text(notice),
            {"id": 3, "author": 3, "status": "sent", "step": "done", "body": "已发", "audience": "{}",
             "send_at": None, "at": _at(7)},
        )  # fmt: skip


def _data(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else json.loads(raw)


async def test_every_draft_becomes_the_persons_one_conversation(at_0008: AsyncEngine) -> None:
    await _seed(at_0008)
    await upgrade(at_0008)
    async with at_0008.connect() as c:
        rows = (
            await c.execute(text("SELECT person_id, flow, step, data FROM conversations ORDER BY person_id"))
        ).all()
        notices = (await c.execute(text("SELECT id, status FROM notices ORDER BY id"))).all()
        tables = await c.run_sync(lambda sync: sync.dialect.get_table_names(sync))
        columns = await c.run_sync(
            lambda sync: [col["name"] for col in sync.dialect.get_columns(sync, "notices")]
        )
    by_person = {person: (flow, step, _data(data)) for person, flow, step, data in rows}
    assert len(rows) == 4  # one a person
    # 1: the ledger draft changed after the declaration, so it is kept; the older notice draft goes.
    assert by_person[1][:2] == ("ledger", "measure")
    assert by_person[1][2]["what"] == "危房" and by_person[1][2]["$start"] == {}
    # 2: the report draft, its campaign, period and village beside its answers.
    flow, step, data = by_person[2]
    assert (flow, step) == ("report", "new_risks")
    assert data["visited"] == 12 and data["period"] == "2026-12-10" and data["campaign_id"] == 1
    # 3: the notice being written, with its text, audience and time.
    flow, step, data = by_person[3]
    assert (flow, step) == ("notice", "confirm")
    assert data["body"] == "冬季防火" and data["audience"] == {"kind": "cadres"} and data["township_id"] == 1
    assert datetime.fromisoformat(data["send_at"]) == _at(20)
    # 4: the conversation is newer than the ledger draft: it stays.
    assert by_person[4][:2] == ("intake", "name")
    assert notices == [(3, "sent")]
    assert "report_drafts" not in tables and "ledger_drafts" not in tables
    assert "step" not in columns
