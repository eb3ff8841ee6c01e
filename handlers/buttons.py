"""The one table from a button class to the use case a press runs.

The button only names an object; every use case decides from the database whether the presser
may act on it. Data that does not parse as one of our buttons never reaches a use case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain import buttons as b
from domain import campaign_chat, campaigns, cases, household, intake, ledger, notices, people, reports, work
from domain.messages import Outcome
from domain.model import Channel
from domain.ports import Clock, UnitOfWork
from handlers.context import Services

TG = Channel.TELEGRAM
UseCase = Callable[[UnitOfWork, Clock], Awaitable[Outcome]]
# (the pressed button, the chat it was pressed in, the services) -> the use case to run
Route = Callable[[Any, str, Services], UseCase]


def _n(run: Callable[[UnitOfWork, Clock], Awaitable[Outcome]]) -> UseCase:
    """A use case of the notification engine, whose unit of work has its repositories too."""
    return lambda uow, clock: run(uow, clock)


def _intake(button: Any, a: str, s: Services) -> UseCase:
    return lambda uow, clock: intake.press(uow, clock, s.protector, s.rules, TG, a, button)


ROUTES: dict[type[b.Button], Route] = {
    **{cls: _intake for cls in intake.INTAKE_BUTTONS},
    b.Cancel: lambda x, a, s: lambda uow, clock: intake.cancel(uow, clock, TG, a, x.conv),
    b.Acknowledge: lambda x, a, s: lambda uow, clock: cases.acknowledge(uow, clock, s.rules, TG, a, x.task),
    b.Step: lambda x, a, s: (
        lambda uow, clock: cases.simple_step(uow, clock, s.rules, TG, a, x.task, x.action)
    ),
    b.ChooseVerdict: lambda x, a, s: (
        lambda uow, clock: cases.choose_verdict(uow, clock, s.rules, TG, a, x.task, x.verdict)
    ),
    b.VisitDay: lambda x, a, s: (
        lambda uow, clock: cases.visit_day_button(uow, clock, s.rules, TG, a, x.conv, x.days_ago)
    ),
    b.VisitDone: lambda x, a, s: lambda uow, clock: cases.finish_visit(uow, clock, s.rules, TG, a, x.conv),
    b.OfferHandOver: lambda x, a, s: lambda uow, clock: cases.offer_handover(uow, clock, TG, a, x.task),
    b.HandTo: lambda x, a, s: lambda uow, clock: cases.hand_over(uow, clock, TG, a, x.task, x.colleague),
    b.Object: lambda x, a, s: lambda uow, clock: cases.start_objection(uow, clock, TG, a, x.declaration),
    b.OpenTask: lambda x, a, s: lambda uow, clock: work.open_task(uow, clock, TG, a, x.task),
    b.AddInfo: lambda x, a, s: lambda uow, clock: household.press_add(uow, clock, TG, a, x.declaration),
    b.AddDone: lambda x, a, s: lambda uow, clock: household.finish_adding(uow, clock, TG, a, x.conv),
    b.Withdraw: lambda x, a, s: lambda uow, clock: household.ask_withdraw(uow, clock, TG, a, x.declaration),
    b.WithdrawYes: lambda x, a, s: lambda uow, clock: household.withdraw(uow, clock, TG, a, x.declaration),
    b.ChooseLanguage: lambda x, a, s: lambda uow, clock: people.set_language(uow, clock, TG, a, x.locale),
    b.NoticeAck: lambda x, a, s: _n(lambda uow, clock: notices.acknowledge(uow, clock, TG, a, x.notice)),
    b.NoticeStatus: lambda x, a, s: _n(lambda uow, clock: notices.show_status(uow, clock, TG, a, x.notice)),
    b.NoticeRemind: lambda x, a, s: _n(lambda uow, clock: notices.remind(uow, clock, TG, a, x.notice)),
    b.NoticeSend: lambda x, a, s: _n(lambda uow, clock: notices.confirm(uow, clock, TG, a, x.notice)),
    b.NoticeCancel: lambda x, a, s: _n(lambda uow, clock: notices.cancel_button(uow, clock, TG, a, x.notice)),
    b.NoticeAudience: lambda x, a, s: _n(
        lambda uow, clock: notices.choose_audience(uow, clock, TG, a, x.notice, x.audience.value)
    ),
    b.NoticeVillage: lambda x, a, s: _n(
        lambda uow, clock: notices.toggle_village(uow, clock, TG, a, x.notice, str(x.village))
    ),
    b.NoticeVillagesDone: lambda x, a, s: _n(
        lambda uow, clock: notices.toggle_village(uow, clock, TG, a, x.notice, "done")
    ),
    b.NoticeWhen: lambda x, a, s: _n(
        lambda uow, clock: notices.choose_when(uow, clock, TG, a, x.notice, x.when)
    ),
    b.CampaignVillage: lambda x, a, s: _n(
        lambda uow, clock: campaign_chat.choose_village(uow, clock, TG, a, x.conv, x.code)
    ),
    b.CampaignRhythm: lambda x, a, s: _n(
        lambda uow, clock: campaign_chat.choose_rhythm(uow, clock, TG, a, x.conv, x.kind)
    ),
    b.CampaignDefaultReminders: lambda x, a, s: _n(
        lambda uow, clock: campaign_chat.default_reminders(uow, clock, TG, a, x.conv)
    ),
    b.CampaignConfirm: lambda x, a, s: _n(
        lambda uow, clock: campaign_chat.confirm(uow, clock, TG, a, x.conv, x.answer)
    ),
    b.PhaseDone: lambda x, a, s: _n(
        lambda uow, clock: campaigns.mark_done(uow, clock, TG, a, x.phase, x.village)
    ),
    b.FillReport: lambda x, a, s: _n(
        lambda uow, clock: reports.start(uow, clock, TG, a, x.campaign, x.period, x.village)
    ),
    b.LedgerVillage: lambda x, a, s: _n(
        lambda uow, clock: ledger.choose_village(uow, clock, TG, a, x.village)
    ),
    b.LedgerClose: lambda x, a, s: _n(lambda uow, clock: ledger.close(uow, clock, TG, a, x.item)),
}


def use_case_for(data: object, address: str, services: Services) -> UseCase | None:
    """The use case a press of `data` runs, or None when the data is not one of our buttons."""
    try:
        button = b.parse(data)
    except b.ButtonError:
        return None
    return ROUTES[type(button)](button, address, services)


# Buttons that answer a question of a conversation: once the press took effect, the question
# becomes the next one ("✓ <answer>" first), one Bot API call a step. Not the buttons of what a
# person keeps as a record (a case card, a notice, the summary confirmed, a verdict): those keep
# their text and lose only their keyboard.
FOLDS: frozenset[type[b.Button]] = frozenset(
    {cls for cls in intake.INTAKE_BUTTONS if cls not in (b.Confirm, b.AddToExisting)}
    | {
        b.VisitDay,
        b.NoticeAudience,
        b.NoticeVillagesDone,
        b.NoticeWhen,
        b.CampaignVillage,
        b.CampaignRhythm,
        b.CampaignDefaultReminders,
        b.LedgerVillage,
        b.ChooseLanguage,
    }
)


def folds(data: object) -> bool:
    """Whether the message of this pressed button may become the next question."""
    try:
        return type(b.parse(data)) in FOLDS
    except b.ButtonError:
        return False
