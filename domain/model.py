"""Entities and value objects of prevent-return-to-poverty monitoring."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# 防止返贫监测和乡村振兴咨询服务电话, the national hotline shown wherever someone may be stuck.
HOTLINE = "12317"


class Role(enum.StrEnum):
    FARMER = "farmer"
    CADRE = "cadre"
    TOWNSHIP = "township"


class Channel(enum.StrEnum):
    TELEGRAM = "telegram"


class DeclarationStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    ACKNOWLEDGED = "acknowledged"
    DECIDED = "decided"


class Verdict(enum.StrEnum):
    """The result of identification (认定结果)."""

    UNSTABLE = "unstable"  # 脱贫不稳定户
    MARGINAL = "marginal"  # 边缘易致贫户
    SUDDEN = "sudden"  # 突发严重困难户
    NOT_ELIGIBLE = "not_eligible"  # 不纳入

    @property
    def eligible(self) -> bool:
        return self is not Verdict.NOT_ELIGIBLE


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DONE = "done"


class RoutedTo(enum.StrEnum):
    """Who a task went to: the village's cadres, or the township when none is bound."""

    VILLAGE = "village"
    TOWNSHIP = "township"


class Flow(enum.StrEnum):
    """What a person's open conversation is collecting."""

    INTAKE = "intake"
    VERDICT_REASON = "verdict_reason"


class IntakeStep(enum.StrEnum):
    RISK = "risk"
    DESCRIPTION = "description"
    NAME = "name"
    PHONE = "phone"
    CONFIRM = "confirm"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class Township:
    id: int
    name: str


@dataclass(frozen=True)
class Village:
    id: int
    code: str
    name: str
    township_id: int
    township_name: str = ""


@dataclass(frozen=True)
class Person:
    id: int
    role: Role
    name: str | None = None
    phone: str | None = None
    township_id: int | None = None
    locale: str | None = None
    village_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """A person's unfinished exchange with the bot; `id` changes with every new one."""

    id: int
    person_id: int
    flow: Flow
    step: str
    data: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class Declaration:
    id: int
    receipt: str
    village_id: int
    declared_by: int
    head_name: str
    phone: str
    risk_type: str
    description: str
    status: DeclarationStatus
    created_at: datetime
    verdict: Verdict | None = None
    verdict_reason: str | None = None


@dataclass(frozen=True)
class Task:
    id: int
    declaration_id: int
    village_id: int
    routed_to: RoutedTo
    status: TaskStatus
    created_at: datetime
    acknowledged_by: int | None = None
    decided_by: int | None = None


@dataclass(frozen=True)
class CaseEvent:
    declaration_id: int
    kind: str
    actor_id: int | None
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invite:
    id: int
    person_id: int
    expires_at: datetime
    used_at: datetime | None
