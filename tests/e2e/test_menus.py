"""The command menu follows the role: a farmer's stays short; cadres and township staff get
theirs in their own chat once bound, and again with /help."""

from __future__ import annotations

from collections.abc import Callable

from bot.service import Service
from botapi.emulator import BotAPIEmulator
from tests.e2e.conftest import Chat, bind


def names(emu: BotAPIEmulator, chat_id: int | None = None, language_code: str = "") -> list[str]:
    scope = {"type": "chat", "chat_id": chat_id} if chat_id else None
    return [c["command"] for c in emu.my_commands(scope, language_code)]


async def test_each_role_sees_its_own_commands(
    service: Service, emu: BotAPIEmulator, chat: Callable[..., Chat]
) -> None:
    assert names(emu) == ["start", "status", "cancel", "language", "help"]
    assert names(emu, language_code="en") == names(emu)
    assert dict((c["command"], c["description"]) for c in emu.my_commands(None, "en"))["status"] == (
        "My declarations"
    )
    staff, zhang = chat(3001, "王芳"), chat(2001, "张伟")
    await bind(service, staff, "13800000003")
    await bind(service, zhang, "13800000001")
    for _ in range(50):  # the menu is set right after the welcome is queued
        if names(emu, 3001) and names(emu, 2001):
            break
        await staff.silent(0.05)
    staff_menu = names(emu, 3001)
    assert {"notice", "campaign", "report", "failed", "overdue", "stats", "problems"} <= set(staff_menu)
    assert "start" not in staff_menu
    cadre_menu = names(emu, 2001)
    assert {"tasks", "daibao", "problem", "problems"} <= set(cadre_menu)
    assert not {"notice", "campaign", "failed"} & set(cadre_menu)
    staff_scope = {"type": "chat", "chat_id": 3001}
    descriptions = {c["command"]: c["description"] for c in emu.my_commands(staff_scope)}
    assert descriptions["campaign"] == "新建排查活动（乡镇）"
    # /help lists what the menu offers, in words.
    await emu.send_command(staff.user, "help")
    await staff.expect("/notice", "/campaign", "/report", "/problems", "/failed")
    await emu.send_command(zhang.user, "help")
    await zhang.expect("/tasks", "/daibao", "/problem", "/problems")
