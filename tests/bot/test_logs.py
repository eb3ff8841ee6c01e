"""The log filter and levels, without the service (the dialog through it: tests/e2e/test_logs.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from bot.settings import load

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def levels() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in logs.NOISY}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, logs.Redactor)]:
            handler.removeFilter(found)


def test_a_record_is_redacted_in_its_message_arguments_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(logs.FORMAT))
    handler.addFilter(logs.Redactor([TOKEN]))
    logger = logging.getLogger("tests.logs.redact")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug(
            "POST https://api.telegram.org/bot%s/sendMessage %s", TOKEN, {"text": "电话 139-1234-5678"}
        )
        logger.info("other bot: bot123:ABC-def_9 %s", TOKEN.replace(":", "%3A"))
        try:
            raise ValueError("身份证 11010519491231002X 不对")
        except ValueError:
            logger.exception("failed for +86 139 1234 5678")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    for secret in (
        TOKEN,
        TOKEN.partition(":")[2],
        "1234-5678",
        "1234 5678",
        "11010519491231002X",
        "ABC-def_9",
    ):
        assert secret not in written, secret
    assert written.count("[token]") == 3 and "[phone]" in written and "身份证 [id] 不对" in written
    assert "Traceback" in written and "ValueError" in written


def test_noisy_libraries_stay_quiet_at_debug_except_in_the_sandbox(levels: None) -> None:
    logs.configure(load(log_level="DEBUG", telegram_bot_token=TOKEN, _env_file=None))
    assert logging.getLogger("httpx").level == logging.WARNING
    assert logging.getLogger("telegram.ext").level == logging.INFO
    assert logging.getLogger("sqlalchemy.engine").level == logging.WARNING
    assert all(isinstance(f, logs.Redactor) for h in logging.getLogger().handlers for f in h.filters[-1:])
    logs.configure(load(log_level="DEBUG", telegram_bot_token=None, _env_file=None))  # the sandbox
    assert logging.getLogger("telegram.ext").level == logging.DEBUG
    logs.configure(load(log_level="INFO", telegram_bot_token=None, _env_file=None))
    assert logging.getLogger("sqlalchemy.engine").level == logging.WARNING
    assert logging.getLogger("telegram.ext").level == logging.INFO
