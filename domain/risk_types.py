"""The list of risk types, loaded from data so it can change without code."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

# The follow-up questions a risk type may ask, and the kind of answer each takes.
FOLLOWUPS = {"cost": "amount", "when": "date", "damage": "text", "drop": "amount"}
MAX_CHOSEN = 5


@dataclass(frozen=True)
class RiskType:
    code: str
    labels: dict[str, str]
    followups: tuple[str, ...] = ()

    def label(self, language: str) -> str:
        """The label in `language` (e.g. "zh_Hans", "en"), falling back to Chinese."""
        return self.labels.get(language) or self.labels["zh_Hans"]


@cache
def risk_types() -> tuple[RiskType, ...]:
    """All risk types in display order."""
    raw = tomllib.loads(resources.files("domain").joinpath("data/risk_types.toml").read_text("utf-8"))
    items = []
    for entry in raw["risk"]:
        code = entry.pop("code")
        followups = tuple(entry.pop("followups", ()))
        unknown = [f for f in followups if f not in FOLLOWUPS]
        if unknown:
            raise ValueError(f"risk_types.toml: {code}: unknown follow-up {unknown}")
        items.append(RiskType(code=code, labels={k: str(v) for k, v in entry.items()}, followups=followups))
    codes = [r.code for r in items]
    if len(set(codes)) != len(codes):
        raise ValueError("risk_types.toml: duplicate code")
    return tuple(items)


def by_code(code: str) -> RiskType | None:
    """The risk type with `code`, or None."""
    return next((r for r in risk_types() if r.code == code), None)


def match_label(text: str) -> RiskType | None:
    """The risk type whose label (in any language) is typed, tolerating spaces and case."""
    wanted = "".join(text.split()).casefold()
    for risk in risk_types():
        for label in risk.labels.values():
            if "".join(label.split()).casefold() == wanted:
                return risk
    return None
