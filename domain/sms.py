"""Which messages may go as a text message (SMS), and what a text may say.

Chinese SMS providers send only templates the township registered with them beforehand; the
service fills in a few short parameters. So a message goes by SMS only when it is one of the
kinds below, and a text carries only the receipt number, the state, a date and the status page's
link: never an ID number, a health detail, an amount or a free-text reason (the status page shows
those to whoever knows the receipt number and the phone number).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from domain.messages import Outgoing


class SmsKind(enum.StrEnum):
    RECEIVED = "received"  # 申报已受理
    ACKNOWLEDGED = "acknowledged"  # 村干部已签收
    VISITED = "visited"  # 已入户核实
    VERDICT = "verdict"  # 拟纳入 / 已纳入监测
    REFUSED = "refused"  # 不纳入 (the reason on the status page, where the objection is offered)
    OBJECTION_RESULT = "objection_result"  # 复核: upheld or reopened
    REMINDER = "reminder"  # a cadre without a chat: a case is due or overdue
    NEW_CASE = "new_case"  # a cadre without a chat: a new declaration in their village


class Param(enum.StrEnum):
    """What a template may be given. Each is short and safe to show on a lock screen."""

    RECEIPT = "receipt"  # the receipt number
    STATE = "state"  # where the case stands, a few words (已签收, 不纳入...)
    DATE = "date"  # a day, YYYY-MM-DD or M月D日
    LINK = "link"  # the status page (PUBLIC_URL/status?r=<receipt>)
    VILLAGE = "village"  # the village's name (cadre texts)


# The messages of the procedure that have a text-message form: catalog key → (kind, state key).
# The state key is a catalog text rendered in the recipient's language (Chinese on SMS).
KINDS: dict[str, tuple[SmsKind, str | None]] = {
    "intake.submitted": (SmsKind.RECEIVED, "state.submitted"),
    "farmer.acknowledged": (SmsKind.ACKNOWLEDGED, "state.acknowledged"),
    "farmer.visited": (SmsKind.VISITED, "state.visited"),
    "farmer.proposed": (SmsKind.VERDICT, "state.proposed"),
    "farmer.entered": (SmsKind.VERDICT, "state.entered"),
    "farmer.verdict_not_eligible": (SmsKind.REFUSED, "state.not_eligible"),
    "farmer.upheld": (SmsKind.OBJECTION_RESULT, "sms.objection_upheld"),
    "farmer.reopened": (SmsKind.OBJECTION_RESULT, "sms.objection_reopened"),
    "case.new": (SmsKind.NEW_CASE, None),
    "deadline.reminder": (SmsKind.REMINDER, None),
    "deadline.warning": (SmsKind.REMINDER, None),
}
# Kinds only a cadre would receive. Not sent: a case goes to a village's cadres only when they can
# act on it (签收 in chat or on the console); a cadre without a chat is skipped and the township
# takes the case. Texting such a cadre would make them look reachable and take the case from the
# township's hands, so these kinds stay out until cadres can act on a case without a chat.
CADRE_KINDS = frozenset({SmsKind.NEW_CASE, SmsKind.REMINDER})


@dataclass(frozen=True)
class SmsText:
    """A message as a text: its kind and the raw values its template may use (dates ISO, the
    state a catalog key); bot/sms renders them and picks those the template file names."""

    kind: SmsKind
    values: dict[str, Any]
    urgent: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "values": self.values, "urgent": self.urgent}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SmsText:
        return cls(SmsKind(data["kind"]), dict(data.get("values") or {}), bool(data.get("urgent", False)))


def sms_of(message: Outgoing) -> SmsText | None:
    """`message` as a text message, or None when it has no text-message form (it is then not sent
    to someone reachable only by SMS)."""
    found = KINDS.get(message.template)
    if found is None:
        return None
    kind, state = found
    params = message.params
    values: dict[str, Any] = {}
    if isinstance(params.get("receipt"), str):
        values[Param.RECEIPT] = params["receipt"]
    if state is not None:
        values[Param.STATE] = state
    when = params.get("date")
    if isinstance(when, dict) and isinstance(when.get("$date"), str):
        values[Param.DATE] = when["$date"]
    elif isinstance(params.get("due"), dict) and isinstance(params["due"].get("$date"), str):
        values[Param.DATE] = params["due"]["$date"]
    if isinstance(params.get("village"), str):
        values[Param.VILLAGE] = params["village"]
    return SmsText(kind, values, urgent=message.urgent)
