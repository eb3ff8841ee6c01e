"""The buttons of a case's next step, for its owner or for the township."""

from __future__ import annotations

from domain import buttons as b
from domain.messages import Action
from domain.model import Declaration, DeclarationStatus, Task, Verdict

S = DeclarationStatus
GREEN_CHANNEL_RISKS = {"disaster", "accident"}  # 绿色通道: help first, paperwork after


def step_actions(
    task: Task, declaration: Declaration, *, township: bool = False, county: bool | None = None
) -> tuple[tuple[Action, ...], ...]:
    """The buttons for what can be done next on a case: for its owner, for the township
    (`township`), for whoever records 县级审定 (`county`; by default the township)."""
    county = township if county is None else county
    t = task.id
    status = declaration.status
    rows: list[tuple[Action, ...]] = []
    if status is S.SUBMITTED:
        rows.append((Action(b.Acknowledge(t)),))
    elif status is S.ACKNOWLEDGED:
        rows.append((Action(b.Step(t, "visit"), label="action.visit"),))
        if set(declaration.risk_types) & GREEN_CHANNEL_RISKS and not declaration.green_channel:
            rows.append((Action(b.Step(t, "green"), label="action.green_channel"),))
    elif status is S.VISITED:
        rows += [
            tuple(Action(b.ChooseVerdict(t, v), label=f"verdict.{v.value}") for v in pair)
            for pair in ((Verdict.UNSTABLE, Verdict.MARGINAL), (Verdict.SUDDEN, Verdict.NOT_ELIGIBLE))
        ]
    elif status is S.PROPOSED:
        rows.append((Action(b.Step(t, "publicize"), label="action.publicize"),))
    elif status is S.PUBLICIZING:
        rows.append((Action(b.Step(t, "close_notice"), label="action.close_notice"),))
    elif status is S.TOWNSHIP_REVIEW and township:
        rows.append((Action(b.Step(t, "approve"), label="action.approve"),))
    elif status is S.APPROVED and county:
        rows.append((Action(b.Step(t, "enter"), label="action.enter"),))
    elif status is S.OBJECTED and township:
        rows.append(
            (
                Action(b.Step(t, "uphold"), label="action.uphold"),
                Action(b.Step(t, "reopen"), label="action.reopen"),
            )
        )
    if status in (S.ACKNOWLEDGED, S.VISITED, S.PROPOSED, S.PUBLICIZING):
        # The owner hands over to a colleague; township staff may reassign.
        rows.append((Action(b.OfferHandOver(t), label="action.hand_over"),))
    return tuple(rows)
