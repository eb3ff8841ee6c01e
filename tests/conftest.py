from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import session_factory
from storage.migrate import upgrade
from storage.uow import SqlUnitOfWorkFactory
from tests.support import FakeClock, database, postgres_url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgresql" in item.name and postgres_url() is None:
            item.add_marker(pytest.mark.skip(reason="TEST_DATABASE_URL is not set"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated database: SQLite always, PostgreSQL when TEST_DATABASE_URL names one."""
    async with database(request.param, tmp_path) as engine:
        await upgrade(engine)
        yield engine


@pytest.fixture
def uow(engine: AsyncEngine) -> SqlUnitOfWorkFactory:
    return SqlUnitOfWorkFactory(session_factory(engine))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
