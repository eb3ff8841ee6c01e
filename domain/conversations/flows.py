"""The one table of conversations: each flow, its steps, how it answers what a person sends, how
it asks its current question again, how it starts, and what is said when it is cancelled."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain import campaign_chat, household, intake, ledger, notices, reports
from domain.actor import Actor
from domain.cases import objection, steps, visit
from domain.dialogue import Said, Tools
from domain.messages import Outcome, Outgoing
from domain.model import Conversation, Flow, IntakeStep, NoticeStep, ReportStep, Verdict
from domain.ports import Clock, UnitOfWork

Answer = Callable[[UnitOfWork, Tools, Actor, Conversation, Said], Awaitable[None]]
Ask = Callable[[UnitOfWork, Clock, Conversation], Awaitable[Outgoing]]
Begin = Callable[[UnitOfWork, Tools, Actor, dict[str, Any]], Awaitable[object]]
Back = Callable[[UnitOfWork, Tools, Actor, Conversation], Awaitable[None]]


@dataclass(frozen=True)
class FlowSpec:
    steps: tuple[str, ...]  # the steps a conversation of the flow can be at
    answer: Answer  # what the person sent, at the current step
    ask: Ask  # the current step's question, asked again (after "keep it", on a reminder)
    begin: Begin  # start it again from the arguments it was started with (after "drop the other")
    cancelled: str  # said when it is cancelled (catalog key; may use {hotline})
    back: Back | None = None  # a word for Back typed ("返回"), where the flow has a way back


def _int(args: dict[str, Any], name: str) -> int:
    return int(args[name])


async def _objection(uow: UnitOfWork, t: Tools, actor: Actor, a: dict[str, Any]) -> Outcome:
    return await objection.start_objection(uow, t.clock, actor, _int(a, "declaration_id"))


async def _report(uow: UnitOfWork, t: Tools, actor: Actor, a: dict[str, Any]) -> Outcome:
    period = date.fromisoformat(str(a["period"]))
    return await reports.start(uow, t.clock, actor, _int(a, "campaign_id"), period, _int(a, "village_id"))


FLOWS: dict[Flow, FlowSpec] = {
    Flow.INTAKE: FlowSpec(
        steps=tuple(step.value for step in IntakeStep),
        answer=intake.answer,
        ask=intake.ask,
        begin=intake.resume,
        cancelled="cancel.done",
        back=intake.back,
    ),
    Flow.VISIT: FlowSpec(
        steps=visit.VISIT_STEPS,
        answer=visit.answer,
        ask=visit.ask,
        begin=lambda uow, t, actor, a: visit.start_visit(uow, t.clock, t.rules, actor, _int(a, "task_id")),
        cancelled="cancel.done",
    ),
    Flow.VERDICT_REASON: FlowSpec(
        steps=("reason",),
        answer=steps.answer_reason,
        ask=steps.ask_reason,
        begin=lambda uow, t, actor, a: steps.choose_verdict(
            uow, t.clock, t.rules, actor, _int(a, "task_id"), Verdict.NOT_ELIGIBLE
        ),
        cancelled="cancel.done",
    ),
    Flow.OBJECTION: FlowSpec(
        steps=("text",),
        answer=objection.answer,
        ask=objection.ask,
        begin=lambda uow, t, actor, a: objection.start_objection(
            uow, t.clock, actor, _int(a, "declaration_id")
        ),
        cancelled="cancel.done",
    ),
    Flow.ADD_INFO: FlowSpec(
        steps=("adding",),
        answer=household.answer,
        ask=household.ask,
        begin=lambda uow, t, actor, a: household.press_add(uow, t.clock, actor, _int(a, "declaration_id")),
        cancelled="cancel.done",
    ),
    Flow.NOTICE: FlowSpec(
        steps=tuple(step.value for step in NoticeStep),
        answer=notices.answer,
        ask=notices.ask,
        begin=lambda uow, t, actor, a: notices.start(uow, t.clock, actor),
        cancelled="notice.cancelled",
    ),
    Flow.CAMPAIGN: FlowSpec(
        steps=campaign_chat.STEPS,
        answer=campaign_chat.answer,
        ask=campaign_chat.ask,
        begin=lambda uow, t, actor, a: campaign_chat.start(uow, t.clock, actor),
        cancelled="campaign.chat_cancelled",
    ),
    Flow.REPORT: FlowSpec(
        steps=tuple(step.value for step in ReportStep),
        answer=reports.answer,
        ask=reports.ask,
        begin=lambda uow, t, actor, a: reports.start(
            uow,
            t.clock,
            actor,
            _int(a, "campaign_id"),
            date.fromisoformat(str(a["period"])),
            _int(a, "village_id"),
        ),
        cancelled="report.cancelled",
    ),
    Flow.LEDGER: FlowSpec(
        steps=ledger.STEPS,
        answer=ledger.answer,
        ask=ledger.ask,
        begin=lambda uow, t, actor, a: ledger.start(uow, t.clock, actor),
        cancelled="ledger.cancelled",
    ),
}


async def restart(uow: UnitOfWork, tools: Tools, actor: Actor, flow: Flow, args: dict[str, Any]) -> Outcome:
    """Start `flow` from the arguments it was started with."""
    found = await FLOWS[flow].begin(uow, tools, actor, args)
    return found if isinstance(found, Outcome) else Outcome(locale=actor.locale)
