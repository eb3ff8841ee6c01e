"""The one table from a button class to the use case a press runs.

The button only names an object; every use case decides from the database whether the presser
may act on it. Data that does not parse as one of our buttons never reaches a use case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain import buttons as b
from domain import campaign_chat, campaigns, cases, household, intake, ledger, notices, people, reports, work
from domain.actor import Actor
from domain.conversations import router
from domain.messages import Outcome
from domain.ports import Clock, UnitOfWork
from handlers.context import Services

UseCase = Callable[[UnitOfWork, Clock, Actor], Awaitable[Outcome]]
# (the pressed button, the services) -> the use case to run for whoever pressed it
Route = Callable[[Any, Services], UseCase]


def _intake(button: Any, s: Services) -> UseCase:
    return lambda uow, clock, actor: intake.press(uow, clock, s.protector, s.rules, actor, button)


ROUTES: dict[type[b.Button], Route] = {
    **{cls: _intake for cls in intake.INTAKE_BUTTONS},
    b.Cancel: lambda x, s: lambda uow, clock, actor: router.cancel(uow, clock, actor, x.conv),
    b.Switch: lambda x, s: lambda uow, clock, actor: router.switch(uow, s, actor, x.conv, x.answer == "drop"),
    b.Acknowledge: lambda x, s: (
        lambda uow, clock, actor: cases.acknowledge(uow, clock, s.rules, actor, x.task)
    ),
    b.Step: lambda x, s: (
        lambda uow, clock, actor: cases.simple_step(uow, clock, s.rules, actor, x.task, x.action)
    ),
    b.ChooseVerdict: lambda x, s: (
        lambda uow, clock, actor: cases.choose_verdict(uow, clock, s.rules, actor, x.task, x.verdict)
    ),
    b.VisitDay: lambda x, s: (
        lambda uow, clock, actor: cases.visit_day_button(uow, clock, s.rules, actor, x.conv, x.days_ago)
    ),
    b.VisitDone: lambda x, s: (
        lambda uow, clock, actor: cases.finish_visit(uow, clock, s.rules, actor, x.conv)
    ),
    b.OfferHandOver: lambda x, s: lambda uow, clock, actor: cases.offer_handover(uow, clock, actor, x.task),
    b.HandTo: lambda x, s: lambda uow, clock, actor: cases.hand_over(uow, clock, actor, x.task, x.colleague),
    b.Object: lambda x, s: lambda uow, clock, actor: cases.start_objection(uow, clock, actor, x.declaration),
    b.OpenTask: lambda x, s: lambda uow, clock, actor: work.open_task(uow, clock, actor, x.task),
    b.AddInfo: lambda x, s: lambda uow, clock, actor: household.press_add(uow, clock, actor, x.declaration),
    b.AddDone: lambda x, s: lambda uow, clock, actor: household.finish_adding(uow, clock, actor, x.conv),
    b.Withdraw: lambda x, s: (
        lambda uow, clock, actor: household.ask_withdraw(uow, clock, actor, x.declaration)
    ),
    b.WithdrawYes: lambda x, s: (
        lambda uow, clock, actor: household.withdraw(uow, clock, actor, x.declaration)
    ),
    b.ChooseLanguage: lambda x, s: lambda uow, clock, actor: people.set_language(uow, clock, actor, x.locale),
    b.NoticeAck: lambda x, s: lambda uow, clock, actor: notices.acknowledge(uow, clock, actor, x.notice),
    b.NoticeStatus: lambda x, s: lambda uow, clock, actor: notices.show_status(uow, clock, actor, x.notice),
    b.NoticeRemind: lambda x, s: lambda uow, clock, actor: notices.remind(uow, clock, actor, x.notice),
    b.NoticeSend: lambda x, s: lambda uow, clock, actor: notices.confirm(uow, clock, actor, x.conv),
    b.NoticeAudience: lambda x, s: (
        lambda uow, clock, actor: notices.choose_audience(uow, clock, actor, x.conv, x.audience.value)
    ),
    b.NoticeVillage: lambda x, s: (
        lambda uow, clock, actor: notices.toggle_village(uow, clock, actor, x.conv, str(x.village))
    ),
    b.NoticeVillagesDone: lambda x, s: (
        lambda uow, clock, actor: notices.toggle_village(uow, clock, actor, x.conv, "done")
    ),
    b.NoticeWhen: lambda x, s: (
        lambda uow, clock, actor: notices.choose_when(uow, clock, actor, x.conv, x.when)
    ),
    b.CampaignVillage: lambda x, s: (
        lambda uow, clock, actor: campaign_chat.choose_village(uow, clock, actor, x.conv, x.code)
    ),
    b.CampaignRhythm: lambda x, s: (
        lambda uow, clock, actor: campaign_chat.choose_rhythm(uow, clock, actor, x.conv, x.kind)
    ),
    b.CampaignDefaultReminders: lambda x, s: (
        lambda uow, clock, actor: campaign_chat.default_reminders(uow, clock, actor, x.conv)
    ),
    b.CampaignConfirm: lambda x, s: (
        lambda uow, clock, actor: campaign_chat.confirm(uow, clock, actor, x.conv, x.answer)
    ),
    b.PhaseDone: lambda x, s: (
        lambda uow, clock, actor: campaigns.mark_done(uow, clock, actor, x.phase, x.village)
    ),
    b.FillReport: lambda x, s: (
        lambda uow, clock, actor: reports.start(uow, clock, actor, x.campaign, x.period, x.village)
    ),
    b.LedgerVillage: lambda x, s: (
        lambda uow, clock, actor: ledger.choose_village(uow, clock, actor, x.conv, x.village)
    ),
    b.LedgerClose: lambda x, s: lambda uow, clock, actor: ledger.close(uow, clock, actor, x.item),
}


def use_case_for(data: object, services: Services) -> UseCase | None:
    """The use case a press of `data` runs, or None when the data is not one of our buttons."""
    try:
        button = b.parse(data)
    except b.ButtonError:
        return None
    return ROUTES[type(button)](button, services)


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
        b.Switch,
        b.ChooseLanguage,
    }
)


def folds(data: object) -> bool:
    """Whether the message of this pressed button may become the next question."""
    try:
        return type(b.parse(data)) in FOLDS
    except b.ButtonError:
        return False
