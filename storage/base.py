"""What the repository modules share: their base, the row count, and the one insert-or-ignore."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


class Repo:
    """A repository: reads and writes rows in its session's transaction, never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session


def dialect_of(on: AsyncSession | Session | str) -> str:
    """The database's dialect name ("postgresql" or "sqlite"), of a session or as given."""
    if isinstance(on, str):
        return on
    return on.bind.dialect.name if on.bind is not None else "sqlite"


def dialect_insert(on: AsyncSession | Session | str, table: Any) -> Any:
    """An INSERT in the dialect's own form, which has ON CONFLICT (both databases have it)."""
    return (postgresql.insert if dialect_of(on) == "postgresql" else sqlite.insert)(table)


def insert_or_ignore(on: AsyncSession | Session | str, table: Any, index_elements: Sequence[str]) -> Any:
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING: a row whose key is there already is
    skipped. Executed with one row or a list of them; the row count says how many were new."""
    return dialect_insert(on, table).on_conflict_do_nothing(index_elements=list(index_elements))


def rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def utcnow() -> datetime:
    return datetime.now(UTC)
