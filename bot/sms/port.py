"""The SMS channel's port: what the sender asks of a provider (Alibaba Cloud, Tencent Cloud).

An adapter turns one text into the provider's signed request and the provider's answer into an
`Answer` the sender acts on: accepted (keep the provider's id), retry later (a 5xx, a time-out, a
network error), throttled (the provider's per-number limit: wait), or failed for good (a wrong
number, template or signature, no balance). Delivery receipts come back as `Report`s, pushed to
our callback or pulled by a query.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Text:
    """One text to send."""

    phone: str  # an 11-digit mainland mobile number, e.g. "13800138000" (the adapter adds +86 if needed)
    template_code: str  # the provider's registered template (Aliyun SMS_123456789, Tencent 1234567)
    params: Mapping[str, str]  # by the template's parameter names, in the template file's order
    out_id: str  # ours, unique per text: Aliyun OutId, Tencent SessionContext; comes back in receipts


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # the provider took it: never send it again
    RETRY = "retry"  # try again after a backoff (5xx, time-out, network, the provider's own fault)
    THROTTLED = "throttled"  # the provider's limit for this number or account: wait, then retry
    FAILED = "failed"  # will not mend by waiting (number, template, signature, balance, parameters)


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    provider_id: str | None = None  # Aliyun BizId, Tencent SerialNo (ACCEPTED)
    code: str = ""  # the provider's code, kept for /failed and the logs ("OK", "isv.BUSINESS_LIMIT_CONTROL")
    message: str = ""  # the provider's words (never holds the number or the parameters)
    retry_after: float | None = None  # THROTTLED: seconds the provider's limit asks us to wait, if known
    # RETRY after a time-out: the provider may have taken it. The sender asks `find` before sending again.
    uncertain: bool = False


@dataclass(frozen=True)
class Report:
    """A delivery receipt: did the text reach the phone?"""

    phone: str  # 11 digits
    delivered: bool
    code: str  # the provider's status or error code ("DELIVRD", "SUCCESS", "UNDELIV"...)
    at: datetime | None  # when the phone received it (or the failure was reported), timezone-aware
    out_id: str | None = None  # ours, when the provider echoes it
    provider_id: str | None = None  # BizId / SerialNo
    description: str = ""


@dataclass(frozen=True)
class Found:
    """A text the provider has a record of (the answer to `find`)."""

    provider_id: str | None
    report: Report | None = None  # its receipt, if one is in already


class Provider(Protocol):
    """An SMS provider's API. Implementations never log the phone number or the parameters."""

    name: str  # "aliyun" | "tencent"
    # The provider's limits on one text (checked at start against the template file, and per text).
    max_param_chars: int
    max_text_chars: int

    async def send(self, text: Text) -> Answer: ...

    async def find(self, phone: str, out_id: str, sent_on: datetime) -> Found | None:
        """Whether the provider accepted the text with `out_id` to `phone` on the day of `sent_on`
        (asked after a time-out, before sending again, so a text is never sent twice)."""
        ...

    async def reports(self, phone: str, sent_on: datetime) -> list[Report]:
        """The delivery receipts of the texts to `phone` sent on the day of `sent_on` (a pull)."""
        ...

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> tuple[list[Report], bytes]:
        """The receipts in a status callback the provider pushed to us, and the body to answer it
        with (each provider expects its own acknowledgement). Raises ValueError for a body that is
        not one."""
        ...

    async def close(self) -> None: ...


@dataclass
class Limits:
    """Per number and template kind (the providers' defaults; configurable): at most `per_minute`
    in a minute, `per_hour` in an hour, `per_day` in a day."""

    per_minute: int = 1
    per_hour: int = 5
    per_day: int = 10
    windows: tuple[tuple[float, int], ...] = field(init=False)

    def __post_init__(self) -> None:
        self.windows = ((60.0, self.per_minute), (3600.0, self.per_hour), (86400.0, self.per_day))
