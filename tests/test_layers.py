"""The house's rules that import-linter cannot see (docs/house.md): no use case names a channel."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parent.parent / "domain"
# Where a channel may be named: the module that chooses it, and the one that defines it.
ALLOWED = {"delivery.py", "model.py"}


def named_channels(source: str) -> list[str]:
    """`Channel.<member>` as written in `source`, with its line."""
    return [
        f"{node.lineno}: Channel.{node.attr}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Channel"
    ]


def test_no_use_case_names_a_channel() -> None:
    found = [
        f"{path.relative_to(DOMAIN.parent)}:{hit}"
        for path in sorted(DOMAIN.rglob("*.py"))
        if path.relative_to(DOMAIN).as_posix() not in ALLOWED
        for hit in named_channels(path.read_text(encoding="utf-8"))
    ]
    assert not found, "a use case names a channel (domain/delivery.py chooses it): " + ", ".join(found)


def test_a_named_channel_is_seen() -> None:
    source = "from domain.model import Channel\n\nasync def f(x):\n    return g(x, Channel.TELEGRAM)\n"
    assert named_channels(source) == ["4: Channel.TELEGRAM"]
    assert named_channels("def f(channel: Channel) -> None: ...\n") == []
