"""The sandbox page's endpoints, through aiohttp's test client, and the sandbox's own wiring."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.sandbox import page
from bot.sandbox.runtime import STALE, UNKNOWN_PERSONA, Sandbox, database_file
from bot.settings import load
from domain.model import Channel, Role

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[Client]:
    app = web.Application()
    page.mount(app, sandbox)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def state(client: Client) -> dict[str, Any]:
    response = await client.get("/sandbox/api/state")
    assert response.status == 200
    data: dict[str, Any] = await response.json()
    return data


def pane(data: dict[str, Any], slug: str) -> dict[str, Any]:
    return next(p for p in data["panes"] if p["slug"] == slug)


async def wait_for(sandbox: Sandbox, client: Client, slug: str, phrase: str) -> dict[str, Any]:
    """The last message of a pane once one contains `phrase`."""
    found: list[dict[str, Any]] = []

    async def check() -> None:
        messages = pane(await state(client), slug)["messages"]
        found[:] = [m for m in messages if phrase in (m["text"] or "")]

    for _ in range(100):
        await check()
        if found:
            return found[-1]
        await sandbox.emulator.wait_changed(sandbox.emulator.changes, 0.2)
    raise AssertionError(f"no message with {phrase!r} in {slug}: {pane(await state(client), slug)}")


async def test_the_page_and_its_qr_code(sandbox: Sandbox, client: Client) -> None:
    html = await (await client.get("/sandbox")).text()
    assert "沙盒" in html and "重置" in html and "扫码" in html
    response = await client.get("/sandbox/qr.png")
    assert response.content_type == "image/png"
    assert (await response.read()).startswith(b"\x89PNG")
    home = await client.get("/", allow_redirects=False)
    assert home.status == 302 and home.headers["Location"] == "/sandbox"


async def test_demo_people_are_bound_through_invites_on_their_own_database(
    sandbox: Sandbox, client: Client
) -> None:
    assert sandbox.service is not None
    assert str(database_file(sandbox.var_dir)) in sandbox.service.settings.database_url
    async with sandbox.service.uow() as uow:
        for person in sandbox.demo.people:
            bound = await uow.persons.by_address(Channel.TELEGRAM, str(person.chat_id))
            assert bound is not None and bound.name == person.name
        assert len({v for p in sandbox.demo.people for v in p.villages}) == 3
    await wait_for(sandbox, client, "cadre", "张伟")
    await wait_for(sandbox, client, "staff", "王芳")
    data = await state(client)
    # Every demo person has a pane: the farmer, each village's cadre, the staff, the county.
    assert [(p["slug"], p["label"], p["name"]) for p in data["panes"]] == [
        ("farmer", "农户", "王大山"),
        ("cadre", "村干部", "张伟"),
        ("cadre2", "村干部", "李娜"),
        ("cadre3", "村干部", "赵强"),
        ("staff", "乡镇", "王芳"),
        ("county", "县级", "孙敏"),
    ]
    assert [p["console"] for p in data["panes"]] == [False, True, True, True, True, True]
    assert pane(data, "farmer")["messages"] == []
    assert not any(data["progress"].values())
    # The sandbox's links name the sandbox itself.
    assert data["public_url"] == sandbox.url.removesuffix("/sandbox")
    async with sandbox.service.uow() as uow:
        county = await uow.persons.by_address(Channel.TELEGRAM, "4001")
        assert county is not None and county.role is Role.COUNTY and county.county == "云岭县"


async def test_scan_declare_and_buttons(sandbox: Sandbox, client: Client) -> None:
    epoch = (await state(client))["epoch"]
    assert (await client.post("/sandbox/api/scan", json={"epoch": epoch})).status == 200

    async def press(message: dict[str, Any], label: str) -> dict[str, Any]:
        row, column = next((r, c) for r, line in enumerate(message["buttons"]) for c, b in enumerate(line)
                           if b["text"] == label)  # fmt: skip
        body = {
            "persona": "farmer",
            "epoch": epoch,
            "message_id": message["id"],
            "row": row,
            "column": column,
            "label": label,
        }
        assert (await client.post("/sandbox/api/press", json=body)).status == 200
        return body

    consent = await wait_for(sandbox, client, "farmer", "知情同意")
    used = await press(consent, "同意，开始填写")
    await wait_for(sandbox, client, "farmer", "户主姓名")
    # The buttons were taken away once used: the same press again is refused politely.
    again = await client.post("/sandbox/api/press", json=used)
    assert again.status == 409 and "失效" in (await again.json())["error"]
    sent = await client.post(
        "/sandbox/api/send", json={"persona": "farmer", "epoch": epoch, "text": "王大山"}
    )
    assert sent.status == 200
    await press(await wait_for(sandbox, client, "farmer", "本人"), "我是户主本人")
    await wait_for(sandbox, client, "farmer", "请输入联系电话")
    assert pane(await state(client), "farmer")["keyboard"] == []  # typed: no reply keyboard
    phone = {"persona": "farmer", "epoch": epoch, "text": "13912345678"}
    assert (await client.post("/sandbox/api/send", json=phone)).status == 200
    await wait_for(sandbox, client, "farmer", "身份证号")


async def test_bad_input_is_refused_politely(sandbox: Sandbox, client: Client) -> None:
    epoch = (await state(client))["epoch"]
    nobody = await client.post("/sandbox/api/send", json={"persona": "mayor", "epoch": epoch, "text": "你好"})
    assert nobody.status == 404 and (await nobody.json())["error"] == UNKNOWN_PERSONA
    empty = await client.post("/sandbox/api/send", json={"persona": "farmer", "epoch": epoch, "text": "  "})
    assert empty.status == 400
    for body in ("not json", "[1, 2]", '{"persona": "farmer"}', '{"persona": 7, "text": "x"}'):
        broken = await client.post("/sandbox/api/send", data=body)
        assert broken.status == 400 and (await broken.json())["ok"] is False
    wrong_type = {"persona": "cadre", "epoch": epoch, "message_id": "1", "row": True, "column": 0}
    assert (await client.post("/sandbox/api/press", json=wrong_type)).status == 400
    ghost = {"persona": "cadre", "epoch": epoch, "message_id": 999, "row": 0, "column": 0}
    assert (await client.post("/sandbox/api/press", json=ghost)).status == 409
    negative = {**ghost, "message_id": 1, "row": -1, "column": -1}
    assert (await client.post("/sandbox/api/press", json=negative)).status == 409
    no_keyboard = {"persona": "cadre", "epoch": epoch, "text": "发送我的手机号"}
    assert (await client.post("/sandbox/api/keyboard", json=no_keyboard)).status == 409


async def test_buttons_from_before_a_reset_are_refused(sandbox: Sandbox, client: Client) -> None:
    old = (await state(client))["epoch"]
    await client.post("/sandbox/api/scan", json={"epoch": old})
    risks = await wait_for(sandbox, client, "farmer", "知情同意")
    reset = await client.post("/sandbox/api/reset")
    new = (await reset.json())["epoch"]
    assert reset.status == 200 and new != old
    press = {"persona": "farmer", "epoch": old, "message_id": risks["id"], "row": 0, "column": 0}
    stale = await client.post("/sandbox/api/press", json=press)
    body = await stale.json()
    assert stale.status == 409 and body["stale"] and body["error"] == STALE and body["epoch"] == new
    typed = await client.post("/sandbox/api/send", json={"persona": "farmer", "epoch": old, "text": "因病"})
    assert typed.status == 409
    # The demo is whole again: no farmer history, the roster re-bound, nothing of the old case.
    assert pane(await state(client), "farmer")["messages"] == []
    await wait_for(sandbox, client, "cadre", "张伟")
    assert sandbox.service is not None
    async with sandbox.service.uow() as uow:
        assert await uow.persons.by_address(Channel.TELEGRAM, str(sandbox.demo.farmer.chat_id)) is None
    # And it works as before.
    await client.post("/sandbox/api/scan", json={"epoch": new})
    await wait_for(sandbox, client, "farmer", "知情同意")


async def test_events_announce_changes(sandbox: Sandbox, client: Client) -> None:
    response = await client.get("/sandbox/api/events")
    assert response.headers["Content-Type"].startswith("text/event-stream")
    first = await response.content.readuntil(b"\n\n")
    assert first.startswith(b"event: changed")
    epoch = (await state(client))["epoch"]
    await client.post("/sandbox/api/send", json={"persona": "staff", "epoch": epoch, "text": "/help"})
    second = await response.content.readuntil(b"\n\n")
    assert second.startswith(b"event: changed")
    response.close()


async def test_a_taken_port_gives_way_to_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load(web_port=port, _env_file=None)
        async with Sandbox(settings, var_dir=tmp_path / "var", poll_timeout=1) as sandbox:
            assert sandbox.service is not None and sandbox.service.web_port not in (port, 0)
            assert sandbox.url.endswith(f":{sandbox.service.web_port}/sandbox")
            # The /web links it sends name the port it took, not the one it wanted.
            assert sandbox.service.settings.public_url == sandbox.url.removesuffix("/sandbox")
