"""Keep the catalogs whole: find every catalog key the code uses, write messages.pot, check, compile.

    python -m locales.catalog pot       # write locales/messages.pot from the code
    python -m locales.catalog check     # every key in every catalog, same placeholders
    python -m locales.catalog compile   # build the .mo files (done by `make`)

Keys are dotted lower-case literals ("intake.ask_phone") in the packages below; keys built at run
time ("verdict." + a Verdict, "action." + a button name) are listed by `dynamic_keys`.
"""

from __future__ import annotations

import ast
import re
import string
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from locales import AVAILABLE, DOMAIN, HERE, catalog_files

ROOT = HERE.parent
PACKAGES = ("domain", "handlers", "bot", "qr", "storage")
NAMESPACES = (
    "start", "intake", "cancel", "button", "validate", "invite", "language", "help", "case",
    "farmer", "verdict", "action", "keyboard", "error", "command", "roster", "cli", "followup",
    "summary", "relation", "declarant", "state", "status", "draft", "daibao", "edit", "work", "event",
    "step", "visit", "deadline", "export", "sandbox", "notice", "sender", "campaign", "report", "ledger",
    "web", "conversation", "flow", "console", "flyer", "county", "sms",
)  # fmt: skip
KEY = re.compile(r"^(" + "|".join(NAMESPACES) + r")\.[a-z_]+$")
QUOTED = re.compile(r"[\"']([a-z]+\.[a-z_]+)[\"']")


def dynamic_keys() -> set[str]:
    """Keys the code composes at run time."""
    from domain.buttons import REGISTRY
    from domain.intake import EDITABLE, RELATIONS
    from domain.model import DeclarationStatus, Verdict
    from domain.people import COMMANDS
    from domain.risk_types import FOLLOWUPS

    keys = {f"verdict.{v.value}" for v in Verdict}
    keys |= {f"{prefix}.{question}" for question in FOLLOWUPS for prefix in ("followup", "summary")}
    keys |= {f"edit.{field}" for field in EDITABLE}
    keys |= {f"relation.{relation}" for relation in RELATIONS}
    keys |= {f"state.{status.value}" for status in DeclarationStatus}
    from domain.procedure import DUE_STEP, EVENT_KINDS

    keys |= {f"event.{kind}" for kind in EVENT_KINDS}
    keys |= {f"step.{step}" for step in DUE_STEP.values()}
    from domain.export import COLUMNS

    keys |= {f"export.{column}" for column in COLUMNS} | {"export.sheet"}
    keys |= {cls.label for cls in REGISTRY.values() if cls.label}
    keys |= {f"command.{name}" for name in COMMANDS}
    keys |= {"language.zh", "language.en"}
    from domain.model import Flow

    keys |= {f"flow.{flow.value}" for flow in Flow}
    from domain.model import Role

    keys |= {f"console.role_{role.value}" for role in Role}
    return keys


def keys_in_code() -> set[str]:
    """Every catalog key written as a literal in the service's packages, plus the dynamic ones."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY.match(node.value):
                    found.add(node.value)
    # The pages' templates name their keys as quoted literals too ({{ t("web.title") }}).
    for path in (ROOT / "bot" / "templates").rglob("*.html"):
        found |= {k for k in QUOTED.findall(path.read_text("utf-8")) if KEY.match(k) and not k.endswith("_")}
    return found | dynamic_keys()


def read(language: str) -> Catalog:
    """Every .po file of a language as one catalog; a key defined twice is an error."""
    merged = Catalog(locale=language)
    for po in catalog_files(language):
        with po.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if not message.id:
                    continue
                if message.id in merged:
                    raise ValueError(f"{po}: {message.id} is also defined in another file")
                merged[message.id] = message
    return merged


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def problems() -> list[str]:
    """What is missing, surplus or inconsistent between the code and the catalogs."""
    wanted = keys_in_code()
    out: list[str] = []
    reference = read(AVAILABLE[0])
    for language in AVAILABLE:
        catalog = read(language)
        have = {m.id for m in catalog if m.id}
        out += [f"{language}: missing {k}" for k in sorted(wanted - have)]
        out += [f"{language}: unused {k}" for k in sorted(have - wanted)]
        for message in catalog:
            if not message.id:
                continue
            if not message.string:
                out.append(f"{language}: untranslated {message.id}")
                continue
            ref = reference.get(message.id)
            if ref is not None and placeholders(str(ref.string)) != placeholders(str(message.string)):
                out.append(f"{language}: placeholders of {message.id} differ from {AVAILABLE[0]}")
    return out


def write_pot() -> Path:
    catalog = Catalog(project="fanghui-bot", charset="utf-8")
    for key in sorted(keys_in_code()):
        catalog.add(key)
    target = HERE / f"{DOMAIN}.pot"
    with target.open("wb") as handle:
        write_po(handle, catalog, width=0, omit_header=True)
    return target


def compile_all() -> None:
    for language in AVAILABLE:
        for po in catalog_files(language):
            with po.open("rb") as source:
                catalog = read_po(source, locale=language)
            with po.with_suffix(".mo").open("wb") as handle:
                write_mo(handle, catalog)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "pot":
        print(write_pot())
        return 0
    if command == "compile":
        compile_all()
        return 0
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
