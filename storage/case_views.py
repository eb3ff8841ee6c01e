"""The console's list of cases (domain.ports.CaseViews): how many match, one sorted page of their
ids, then those cases' columns.

Every value comes checked from domain.office.cases; here it only becomes SQL, with bound
parameters. A declaration has one task (submission makes it; later steps advance it), so the
join gives one row a case. Each query reads only the tables it needs, so that the indexes of
migrations 0011 and 0013 answer it: ix_declarations_console holds the scope (village) and every
filter on declarations but the risk types (counting with those stops some pages ahead),
ix_declarations_created the order by date, ix_declarations_filer the cadres who filed, and
ix_tasks_console the due times and overdue steps.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, cast, func, literal, select
from sqlalchemy.orm import aliased

from domain.model import DeclarationStatus, TaskStatus
from domain.ports import CasePage, CaseQuery, CaseRow
from storage.base import Repo
from storage.tables import DeclarationRow, PersonRow, TaskRow, VillageRow

D, T, V = DeclarationRow, TaskRow, VillageRow
OPEN_TASKS = (TaskStatus.OPEN.value, TaskStatus.ACKNOWLEDGED.value)
COUNT_AHEAD = 20  # pages counted past the one asked for, when a filter needs every row read


def _escaped(text: str) -> str:
    """`text` for a LIKE pattern: its own % and _ are matched as themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _next_prefix(digits: str) -> str:
    """The smallest string after every string that starts with `digits` (a range on the index)."""
    return digits[:-1] + chr(ord(digits[-1]) + 1)


class CaseViews(Repo):
    """The console's list of cases (domain.ports.CaseViews)."""

    @staticmethod
    def _declaration_terms(query: CaseQuery) -> list[Any]:
        """The conditions on declarations, besides the villages."""
        terms: list[Any] = []
        if query.status is not None:
            terms.append(D.status == query.status.value)
        if query.risk is not None:
            # Any of the declaration's risk types: its JSON list holds the quoted code.
            terms.append(cast(D.risk_types, String).like(f'%"{_escaped(query.risk)}"%', escape="\\"))
        if query.by_chat is not None:
            terms.append(D.via == ("chat" if query.by_chat else "web"))
        if query.daibao is not None:
            terms.append(D.filed_by_cadre.is_not(None) if query.daibao else D.filed_by_cadre.is_(None))
        if query.filer is not None:
            terms.append(D.filed_by_cadre == query.filer)
        if query.since is not None:
            terms.append(D.created_at >= query.since)
        if query.until is not None:
            terms.append(D.created_at < query.until)
        if query.receipt:
            # A range on the receipt's unique index (LIKE would not use it on SQLite).
            terms += [D.receipt >= query.receipt, D.receipt < _next_prefix(query.receipt)]
        if query.name:
            terms.append(D.head_name.like(f"%{_escaped(query.name)}%", escape="\\"))
        return terms

    @staticmethod
    def _task_terms(query: CaseQuery) -> list[Any]:
        if query.overdue_at is None:
            return []
        return [T.due_at < query.overdue_at, T.status.in_(OPEN_TASKS)]

    def _select(self, query: CaseQuery, *, tasks: bool, declarations: bool) -> Select[Any]:
        """The declarations' ids (as tasks name them, when tasks are read) that match `query`,
        reading only the tables needed: what a query reads of tasks, ix_tasks_console holds; of
        declarations, ix_declarations_console (but the risk types and the declarant's chat)."""
        terms = self._declaration_terms(query) if declarations else []
        if tasks:
            statement = select(T.declaration_id).where(
                T.village_id.in_(query.village_ids), *self._task_terms(query)
            )
            if declarations:
                statement = statement.join(D, D.id == T.declaration_id).where(
                    D.village_id.in_(query.village_ids)
                )
            return statement.where(*terms)
        return select(D.id).where(D.village_id.in_(query.village_ids), *terms)

    async def _count(self, query: CaseQuery) -> tuple[int, bool]:
        """How many match: all, or (a filter no index holds: every row would be read) as many as
        the pages up to COUNT_AHEAD past this one need."""
        statement = self._select(
            query,
            tasks=query.overdue_at is not None,
            declarations=query.overdue_at is None or bool(self._declaration_terms(query)),
        )
        if query.risk is None:
            total = await self.session.scalar(select(func.count()).select_from(statement.subquery()))
            return int(total or 0), True
        enough = query.offset + (COUNT_AHEAD + 1) * query.limit + 1
        counted = await self.session.scalar(
            select(func.count()).select_from(statement.limit(enough).subquery())
        )
        total = int(counted or 0)
        return total, total < enough

    def _order(self, query: CaseQuery, statement: Select[Any]) -> Select[Any]:
        def way(column: Any) -> Any:
            return column.desc() if query.descending else column.asc()

        if query.sort == "state":
            return statement.order_by(way(D.status), way(D.id))
        if query.sort == "village":
            return statement.join(V, V.id == D.village_id).order_by(way(V.name), way(D.village_id), way(D.id))
        return statement.order_by(way(D.created_at), way(D.id))

    async def _ids(self, query: CaseQuery) -> list[int]:
        """The ids of the page's cases, in order."""
        if query.sort != "due":
            statement = self._order(
                query, self._select(query, tasks=query.overdue_at is not None, declarations=True)
            )
            found = await self.session.scalars(statement.offset(query.offset).limit(query.limit))
            return list(found)

        # By the due time: first the cases with a step due (in the order asked for), then those
        # with nothing due (finished), last either way; each part read in its index's order.
        def way(column: Any) -> Any:
            return column.desc() if query.descending else column.asc()

        declarations = bool(self._declaration_terms(query))
        due = self._select(query, tasks=True, declarations=declarations).where(T.due_at.is_not(None))
        ids = list(
            await self.session.scalars(
                due.order_by(way(T.due_at), way(T.declaration_id)).offset(query.offset).limit(query.limit)
            )
        )
        if len(ids) == query.limit:
            return ids
        if ids:
            with_due = query.offset + len(ids)
        else:
            with_due = int(await self.session.scalar(select(func.count()).select_from(due.subquery())) or 0)
        rest = self._select(query, tasks=True, declarations=declarations).where(T.due_at.is_(None))
        ids += await self.session.scalars(
            rest.order_by(way(T.declaration_id))
            .offset(max(0, query.offset - with_due))
            .limit(query.limit - len(ids))
        )
        return ids

    async def page(self, query: CaseQuery) -> CasePage:
        if not query.village_ids:
            return CasePage([], 0)
        total, exact = await self._count(query)
        if total == 0 or query.offset >= total:
            return CasePage([], total, exact)
        wanted = await self._ids(query)
        owner, filer = aliased(PersonRow), aliased(PersonRow)
        chat = (D.via == "chat").label("by_chat")
        rows = await self.session.execute(
            select(
                D.id,
                T.id,
                D.receipt,
                D.village_id,
                V.name,
                D.head_name,
                D.status,
                D.risk_types,
                D.risk_type,
                D.created_at,
                T.due_at,
                T.status,
                owner.name,
                filer.name,
                D.filed_by_cadre,
                chat,
                D.green_channel,
            )
            .join(T, T.declaration_id == D.id)
            .join(V, V.id == D.village_id)
            .outerjoin(owner, owner.id == T.acknowledged_by)
            .outerjoin(filer, filer.id == D.filed_by_cadre)
            .where(D.id.in_(wanted))
        )
        found: dict[int, CaseRow] = {}
        for r in rows:
            found[r[0]] = CaseRow(
                declaration_id=r[0],
                task_id=r[1],
                receipt=r[2] or "",
                village_id=r[3],
                village=r[4],
                head_name=r[5],
                status=DeclarationStatus(r[6]),
                risk_types=tuple(r[7] or [r[8]]),
                created_at=r[9],
                due_at=r[10],
                task_status=TaskStatus(r[11]),
                owner=r[12],
                filer=r[13],
                daibao=r[14] is not None,
                by_chat=bool(r[15]),
                green_channel=bool(r[16]),
            )
        return CasePage([found[i] for i in wanted if i in found], total, exact)

    async def filers(self, village_ids: tuple[int, ...]) -> list[tuple[int, str]]:
        if not village_ids:
            return []
        # Two reads, each on an index (ix_declarations_filer, then the people by id): joined in
        # one, PostgreSQL reads every person to find a few.
        filed = await self.session.scalars(
            select(D.filed_by_cadre)
            .where(D.filed_by_cadre.is_not(None), D.village_id.in_(village_ids))
            .distinct()
        )
        ids = [int(i) for i in filed if i is not None]
        if not ids:
            return []
        rows = await self.session.execute(
            select(PersonRow.id, func.coalesce(PersonRow.name, literal("")))
            .where(PersonRow.id.in_(ids))
            .order_by(PersonRow.name, PersonRow.id)
        )
        return [(int(pid), str(name)) for pid, name in rows]
