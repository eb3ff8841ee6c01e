"""Bodies without Content-Length (chunked) are counted as they stream and refused with 413 as soon
as they pass the limit, not read to their end first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientTimeout

from bot.webform.safety import MAX_BODY, MAX_TEXT_BODY, MAX_TEXT_PART
from storage.tables import DeclarationRow, UploadRow
from tests.web.conftest import Site, answers
from tests.web.test_pages import count, form_path

CHUNK = 256 * 1024
SLACK = 1024 * 1024  # bytes past the limit the client sends before it waits for the answer


class Upload:
    """A chunked body: `head`, then zeros up to `total` bytes, counting what the client pulled.

    Once `limit` + SLACK bytes are out it waits (up to WAIT seconds) for the server's answer and
    ends the body when it comes: a server that refuses as soon as the limit is passed answers
    during the wait; one that reads to the end answers only after all `total` bytes.
    """

    WAIT = 5.0

    def __init__(self, head: bytes, total: int, limit: int = 0, tail: bytes = b"") -> None:
        self.head = head
        self.tail = tail
        self.total = total
        self.pause_at = limit + SLACK
        self.pulled = 0
        self.answered = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        self.pulled = len(self.head)
        yield self.head
        while self.pulled < self.total:
            if self.pulled >= self.pause_at and not self.answered.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.answered.wait(), self.WAIT)
            if self.answered.is_set():
                return
            self.pulled += CHUNK
            yield b"\0" * CHUNK
        yield self.tail


END = b"\r\n--B--\r\n"


def multipart(token: str, *parts: tuple[str, str | None]) -> bytes:
    """The start of a multipart body: the CSRF field, then the headers of `parts` (name, filename)."""
    lines = [b'--B\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n' + token.encode() + b"\r\n"]
    for name, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        lines.append(f"--B\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
    return b"".join(lines)


async def post_chunked(site: Site, path: str, upload: Upload, content_type: str) -> tuple[int, str, int]:
    """Post the upload (aiohttp sends an async generator chunked, with no Content-Length)."""
    response = await site.client.post(
        path, data=upload.chunks(), headers={"Content-Type": content_type}, timeout=ClientTimeout(60)
    )
    pulled_when_answered = upload.pulled
    upload.answered.set()
    body = await response.text()
    assert "Content-Length" not in response.request_info.headers
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    response.close()
    return response.status, body, pulled_when_answered


@pytest.mark.parametrize(
    "parts",
    [
        [("photos", "big.jpg")],  # one photo of 60 MB: cut at 3 MB, then the rest is skipped
        [("description", None)],  # one text field of 60 MB
        [("notes", "x.bin"), ("photos", "a.jpg")],  # a part the form does not know, skipped whole
    ],
    ids=["photo", "text", "unknown-part"],
)
async def test_a_chunked_form_past_the_limit_is_refused_with_413_before_it_is_read(
    site: Site, parts: list[tuple[str, str | None]]
) -> None:
    path, token = await form_path(site)
    upload = Upload(multipart(token, *parts), total=4 * MAX_BODY, limit=MAX_BODY, tail=END)
    status, body, pulled = await post_chunked(site, path, upload, "multipart/form-data; boundary=B")
    assert status == 413 and "内容太大" in body
    assert pulled <= MAX_BODY + SLACK + CHUNK < upload.total
    assert await count(site, DeclarationRow) == 0 and await count(site, UploadRow) == 0


async def test_a_chunked_form_of_endless_empty_parts_is_refused_too(site: Site) -> None:
    path, token = await form_path(site)
    empty = b'--B\r\nContent-Disposition: form-data; name="x"\r\n\r\n\r\n'
    upload = Upload(multipart(token) + empty * (MAX_BODY // len(empty) + 10), total=0, tail=END[2:])
    started = asyncio.get_running_loop().time()
    status, body, _ = await post_chunked(site, path, upload, "multipart/form-data; boundary=B")
    assert status == 413 and "内容太大" in body
    assert asyncio.get_running_loop().time() - started < 5  # not parsed part by part to the end


async def test_a_chunked_form_without_photos_is_limited_to_its_text(site: Site) -> None:
    path, _ = await form_path(site)
    upload = Upload(b"name=" + b"x" * 100, total=4 * MAX_BODY, limit=MAX_TEXT_BODY)
    status, body, pulled = await post_chunked(site, path, upload, "application/x-www-form-urlencoded")
    assert status == 413 and "内容太大" in body
    assert pulled <= MAX_TEXT_BODY + SLACK + CHUNK


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=B"]
)
async def test_a_chunked_status_lookup_past_its_few_fields_is_refused_with_413(
    site: Site, content_type: str
) -> None:
    token = await site.csrf("/status")
    head = (
        multipart(token, ("receipt", None))
        if "multipart" in content_type
        else f"csrf={token}&receipt=".encode()
    )
    upload = Upload(
        head, total=4 * MAX_BODY, limit=MAX_TEXT_PART, tail=END if "multipart" in content_type else b""
    )
    status, body, pulled = await post_chunked(site, "/status", upload, content_type)
    assert status == 413 and "内容太大" in body
    assert pulled <= MAX_TEXT_PART + SLACK + CHUNK


async def test_an_honest_chunked_form_still_goes_through(site: Site) -> None:
    path, token = await form_path(site)
    fields = [("csrf", token)] + [
        (name, str(one))
        for name, value in answers().items()
        for one in (value if isinstance(value, list) else [value])
    ]
    body = b"".join(
        f'--B\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    upload = Upload(body + b"--B--\r\n", total=0)
    response = await site.client.post(
        path,
        data=upload.chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=B"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    assert await count(site, DeclarationRow) == 1
