"""A local SMS provider emulator: the tests and the sandbox point the SMS adapters at it.

One aiohttp server speaks both providers' API shapes:

- Alibaba Cloud (dysmsapi 2017-05-25, RPC style) at ``POST /aliyun/``: form-encoded parameters signed
  with HMAC-SHA1 (SignatureVersion 1.0); SendSms and QuerySendDetails; errors as Aliyun gives them
  (HTTP 400/404 for the gateway's codes, HTTP 200 with an ``isv.*`` Code for the business ones).
- Tencent Cloud (API 3.0, sms 2021-01-11) at ``POST /tencent/``: a JSON body with the X-TC-* headers and
  a TC3-HMAC-SHA256 Authorization; SendSms and PullSmsSendStatusByPhoneNumber; every answer HTTP 200 with
  ``{"Response": ...}``, errors in ``Response.Error`` or per number in ``SendStatusSet[].Code``.

Both signatures are verified here with an implementation of the documented algorithms written apart
from ``bot/sms`` (a mismatch is refused as the provider refuses it), so a signing bug shows in the tests.

The test half: :meth:`SmsEmulator.texts` is what a phone received (provider, template, parameters, our
out-id, the provider's id, when), :meth:`SmsEmulator.screen` renders them as the phone shows them
(``templates``: code → text with ``${name}`` for Aliyun or ``{1}`` for Tencent), :meth:`deliver` and
``auto_deliver`` give receipts (pulled by the query actions, pushed to ``callback_urls``), and
:meth:`fail_next` injects faults: ``throttle`` (each provider's flow-control code), ``server_error``
(HTTP 500), ``timeout`` (the text is ACCEPTED, then the answer is held past the client's time-out: the
case where a retry must not send twice) and ``permanent`` (a bad number). The emulator's own
per-number limits (1 a minute, 5 an hour, 10 a day per number and template, Tencent's first window 30
seconds) hold while ``enforce_limits`` is on.

Everything lives on one instance (no module state); use it from the event loop it was started on. It
logs nothing (the texts hold phone numbers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

__all__ = ["EmuPush", "EmuReport", "EmuText", "SmsEmulator"]

JSONDict = dict[str, Any]

ALIYUN = "aliyun"
TENCENT = "tencent"
PROVIDERS = (ALIYUN, TENCENT)
FAULT_KINDS = ("throttle", "server_error", "timeout", "permanent")
BEIJING = ZoneInfo("Asia/Shanghai")

# The default credentials the emulator accepts (tests and the sandbox configure the adapters with them).
ALIYUN_KEY_ID = "LTAI5tEmulatorKeyId"
ALIYUN_KEY_SECRET = "emulator-aliyun-secret"
TENCENT_SECRET_ID = "AKIDEmulatorSecretId0000000000000000"
TENCENT_SECRET_KEY = "emulator-tencent-secret-key"
TENCENT_SDK_APP_ID = "1400000000"

ALIYUN_VERSION = "2017-05-25"
TENCENT_VERSION = "2021-01-11"
SIGNATURE_SKEW = timedelta(minutes=15)  # Aliyun's Timestamp window
TC3_SKEW = 300  # seconds: Tencent's X-TC-Timestamp window

_MOBILE = re.compile(r"(?:\+?86)?(1\d{10})")
_URL = re.compile(r"(?i)https?://|www\.|\.(?:com|cn|net|org)\b")
_ALIYUN_VARIABLE = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")
_TENCENT_VARIABLE = re.compile(r"\{(\d+)\}")
_TC3 = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request,"
    r" ?SignedHeaders=(?P<signed>[A-Za-z0-9;-]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)

# Aliyun's windows name the window in the code's message (as Aliyun does).
_ALIYUN_WINDOW_WORDS = {60.0: "分钟级", 3600.0: "小时级", 86400.0: "天级"}
_TENCENT_WINDOW_CODES = {
    30.0: "LimitExceeded.PhoneNumberThirtySecondLimit",
    60.0: "LimitExceeded.PhoneNumberThirtySecondLimit",
    3600.0: "LimitExceeded.PhoneNumberOneHourLimit",
    86400.0: "LimitExceeded.PhoneNumberDailyLimit",
}


# --------------------------------------------------------------------------------------------
# Public value objects
# --------------------------------------------------------------------------------------------


@dataclass
class EmuReport:
    """A delivery receipt of one text (what the carrier reported)."""

    delivered: bool
    code: str  # Aliyun "DELIVERED"/ErrCode, Tencent errmsg "DELIVRD"/"UNDELIV"...
    description: str
    at: datetime  # Beijing time


@dataclass
class EmuText:
    """A text the emulator accepted: what the phone received."""

    provider: str  # "aliyun" | "tencent"
    phone: str  # 11 digits
    sign_name: str
    template_code: str  # Aliyun TemplateCode, Tencent TemplateId
    params: dict[str, str]  # Aliyun by variable name; Tencent by position, "1", "2"...
    out_id: str  # Aliyun OutId, Tencent SessionContext ("" when none was given)
    provider_id: str  # Aliyun BizId, Tencent SerialNo
    accepted_at: datetime  # Beijing time
    fault: str | None = None  # "timeout" when the answer was held past the client's time-out
    report: EmuReport | None = None


@dataclass
class EmuPush:
    """One receipt pushed to a callback URL, and how it was answered."""

    provider: str
    url: str
    body: list[JSONDict]
    status: int  # HTTP status, 0 when the callback could not be reached
    acknowledged: bool  # answered with the provider's acknowledgement ({"code":0} / {"result":0})


@dataclass
class _Fault:
    kind: str
    provider: str  # "*" or a provider
    times: int
    hang: float


class _Refusal(Exception):
    """An error answer: the HTTP status and the provider's body."""

    def __init__(self, status: int, body: JSONDict, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.body = body
        self.code = code


# --------------------------------------------------------------------------------------------
# The signatures, as the providers document them (written apart from bot/sms on purpose)
# --------------------------------------------------------------------------------------------


def _pop_quote(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else, UTF-8, as %XY (space %20, * %2A).
    return urllib.parse.quote(value, safe="-_.~", encoding="utf-8")


def aliyun_expected(params: Mapping[str, str], secret: str, method: str) -> tuple[str, str]:
    """(string to sign, signature) of an Aliyun RPC request, Signature left out."""
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    query = "&".join(_pop_quote(k) + "=" + _pop_quote(v) for k, v in pairs)
    to_sign = method.upper() + "&" + _pop_quote("/") + "&" + _pop_quote(query)
    mac = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1)
    return to_sign, base64.b64encode(mac.digest()).decode()


def tc3_expected(
    secret_key: str,
    *,
    method: str,
    query: str,
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
    timestamp: int,
    date: str,
    service: str,
) -> str:
    """The hex TC3-HMAC-SHA256 signature of a request (headers looked up by the signed names)."""
    lines = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
    canonical = "\n".join(
        [method.upper(), "/", query, lines, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("TC3" + secret_key).encode()
    for part in (date, service, "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def _mobile(value: object) -> str | None:
    found = _MOBILE.fullmatch(str(value).strip()) if isinstance(value, str | int) else None
    return found.group(1) if found else None


def _fmt(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


class SmsEmulator:
    """A local Alibaba Cloud + Tencent Cloud SMS server plus a test-side API playing the phones."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        aliyun_keys: Mapping[str, str] | None = None,
        tencent_keys: Mapping[str, str] | None = None,
        tencent_sdk_app_id: str = TENCENT_SDK_APP_ID,
        sign_names: Iterable[str] | None = None,
        templates: Mapping[str, str] | None = None,
    ) -> None:
        """Nothing is bound until :meth:`start`.

        ``aliyun_keys``: AccessKeyId → AccessKeySecret; ``tencent_keys``: SecretId → SecretKey (the
        defaults are the module's ALIYUN_KEY_ID/TENCENT_SECRET_ID pairs). ``sign_names``: the approved
        signatures (None: any). ``templates``: the approved templates, code → text (None: any code, no
        parameter checks); a template's placeholders must all be given, as the providers require.
        """
        self.host = host
        self.port = port
        self.aliyun_keys = dict(aliyun_keys or {ALIYUN_KEY_ID: ALIYUN_KEY_SECRET})
        self.tencent_keys = dict(tencent_keys or {TENCENT_SECRET_ID: TENCENT_SECRET_KEY})
        self.tencent_sdk_app_id = tencent_sdk_app_id
        self.sign_names = set(sign_names) if sign_names is not None else None
        self.templates: dict[str, str] = dict(templates or {})

        # Behaviour, all switchable by a test or the sandbox.
        self.enforce_limits = True
        # Per number and template: (window in seconds, most texts in it), as the providers' defaults.
        self.limits: dict[str, tuple[tuple[float, int], ...]] = {
            ALIYUN: ((60.0, 1), (3600.0, 5), (86400.0, 10)),
            TENCENT: ((30.0, 1), (3600.0, 5), (86400.0, 10)),
        }
        # A longer parameter is refused (isv.PARAM_LENGTH_LIMIT / TemplateParameterLengthLimit). Aliyun's
        # figure for "other" variables is 35; Tencent holds a personally verified account to 12 and an
        # organisation-verified one (a township's) to none: None.
        self.max_param_chars: dict[str, int | None] = {ALIYUN: 35, TENCENT: None}
        self.max_text_chars = 500  # signature + rendered template, when the template is known
        # None: no receipts unless deliver() is called; True/False: each accepted text gets a
        # delivered/undelivered receipt at once (pushed to its provider's callback URL, if set).
        self.auto_deliver: bool | None = None
        self.callback_urls: dict[str, str] = {}  # provider → URL the receipts are pushed to
        # Tencent echoes SessionContext in pulled receipts only when it enabled that for the account.
        self.tencent_echo_session_context = True
        self.timeout_hang = 2.0  # seconds a "timeout" fault holds the answer (fail_next may say)
        self.now: Callable[[], datetime] = lambda: datetime.now(BEIJING)

        # Observable state.
        self.requests: list[tuple[str, str]] = []  # (provider, action) of every request
        self.refused: list[tuple[str, str, str]] = []  # (provider, action, code) of every error answer
        self.pushes: list[EmuPush] = []
        self.changes = 0

        self._texts: list[EmuText] = []
        self._faults: list[_Fault] = []
        self._nonces: set[str] = set()
        self._biz_ids = itertools.count(900_619_746_936_498)
        self._serials = itertools.count(1_045_710_669_157_053)
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._push_tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def aliyun_url(self) -> str:
        """The ``endpoint`` of :class:`bot.sms.aliyun.AliyunSms`."""
        return f"{self.base_url}/aliyun/"

    @property
    def tencent_url(self) -> str:
        """The ``endpoint`` of :class:`bot.sms.tencent.TencentSms`."""
        return f"{self.base_url}/tencent/"

    def settings(self, provider: str) -> dict[str, str]:
        """The service's SMS_* settings that send to this emulator as `provider` (the keys it knows)."""
        if provider == ALIYUN:
            key_id, secret = next(iter(self.aliyun_keys.items()))
            return {
                "sms_provider": ALIYUN,
                "sms_key_id": key_id,
                "sms_key_secret": secret,
                "sms_endpoint": self.aliyun_url,
            }
        if provider == TENCENT:
            key_id, secret = next(iter(self.tencent_keys.items()))
            return {
                "sms_provider": TENCENT, "sms_key_id": key_id, "sms_key_secret": secret,
                "sms_sdk_app_id": self.tencent_sdk_app_id, "sms_endpoint": self.tencent_url,
            }  # fmt: skip
        raise ValueError(f"provider must be {ALIYUN!r} or {TENCENT!r}")

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        """Bind the HTTP server (on a free port unless one was given)."""
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_post("/aliyun/", self._handle_aliyun)
        app.router.add_post("/tencent/", self._handle_tencent)
        runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Release held answers, finish the pushes under way, shut the server down."""
        if self._runner is None:
            return
        self._closing.set()
        await self.settle()
        runner, self._runner = self._runner, None
        await runner.cleanup()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---------------------------------------------------------------- the phones

    def texts(self, phone: str | None = None) -> list[EmuText]:
        """The texts accepted for `phone` (any form: 11 digits, 86..., +86...), oldest first; all
        texts when `phone` is None."""
        if phone is None:
            return list(self._texts)
        number = _mobile(phone) or phone
        return [text for text in self._texts if text.phone == number]

    def render(self, text: EmuText) -> str:
        """The text as the phone shows it: 【signature】 and the template with its parameters filled
        in (the template code and the raw parameters when the template is not known)."""
        body = self.templates.get(text.template_code)
        if body is None:
            filled = f"[{text.template_code}] " + " ".join(text.params.values())
        elif text.provider == ALIYUN:
            filled = _ALIYUN_VARIABLE.sub(lambda m: text.params.get(m.group(1), m.group(0)), body)
        else:
            filled = _TENCENT_VARIABLE.sub(lambda m: text.params.get(m.group(1), m.group(0)), body)
        return f"【{text.sign_name}】{filled}"

    def screen(self, phone: str) -> list[str]:
        """What `phone` shows, oldest first."""
        return [self.render(text) for text in self.texts(phone)]

    def clear(self) -> None:
        """Forget the texts, the faults and the records (the settings stay)."""
        self._texts.clear()
        self._faults.clear()
        self.requests.clear()
        self.refused.clear()
        self.pushes.clear()
        self._notify()

    async def wait_for_texts(self, phone: str, count: int = 1, timeout: float = 5.0) -> list[EmuText]:
        """Wait until `phone` has at least `count` texts; returns them (TimeoutError if it does not)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.texts(phone)) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.texts(phone))} of {count} texts arrived")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.texts(phone)

    # ---------------------------------------------------------------- faults and receipts

    def fail_next(
        self, n: int = 1, kind: str = "throttle", *, provider: str = "*", hang: float | None = None
    ) -> None:
        """Make the next `n` sends (of `provider`, or either) fail with `kind`: ``throttle`` (Aliyun
        isv.BUSINESS_LIMIT_CONTROL, Tencent LimitExceeded.PhoneNumberThirtySecondLimit), ``server_error``
        (HTTP 500), ``timeout`` (the text is accepted and stored, the answer held `hang` seconds) or
        ``permanent`` (Aliyun isv.MOBILE_NUMBER_ILLEGAL, Tencent InvalidParameterValue.IncorrectPhoneNumber).
        Queries are never faulted."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        if provider not in ("*", *PROVIDERS):
            raise ValueError(f"provider must be '*', {ALIYUN!r} or {TENCENT!r}")
        self._faults.append(_Fault(kind, provider, n, self.timeout_hang if hang is None else hang))

    async def deliver(
        self,
        text: EmuText,
        delivered: bool = True,
        *,
        code: str | None = None,
        description: str | None = None,
        at: datetime | None = None,
    ) -> EmuReport:
        """Give `text` its receipt and push it to its provider's callback URL (if one is set; the push
        is awaited)."""
        report = self._receipt_for(text, delivered, code=code, description=description, at=at)
        if self.callback_urls.get(text.provider):
            await self._push(text)
        return report

    async def settle(self) -> None:
        """Wait for the receipts being pushed in the background (auto_deliver)."""
        while self._push_tasks:
            await asyncio.gather(*list(self._push_tasks), return_exceptions=True)

    # ---------------------------------------------------------------- shared machinery

    def _notify(self) -> None:
        self.changes += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _take_fault(self, provider: str) -> _Fault | None:
        for fault in self._faults:
            if fault.provider in ("*", provider):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _limited(self, provider: str, phone: str, template: str) -> float | None:
        """The window (seconds) a new text to `phone` with `template` would overflow, if any."""
        if not self.enforce_limits:
            return None
        now = self.now()
        sent = [
            t.accepted_at
            for t in self._texts
            if t.provider == provider and t.phone == phone and t.template_code == template
        ]
        for seconds, most in self.limits[provider]:
            if sum(1 for at in sent if at > now - timedelta(seconds=seconds)) >= most:
                return seconds
        return None

    def _accept(
        self, provider: str, phone: str, sign: str, template: str, params: dict[str, str], out_id: str
    ) -> EmuText:
        if provider == ALIYUN:
            provider_id = f"{next(self._biz_ids)}^0"
        else:
            provider_id = f"2433:{next(self._serials)}{uuid.uuid4().int % 10**12:012d}"
        text = EmuText(provider, phone, sign, template, params, out_id, provider_id, self.now())
        self._texts.append(text)
        if self.auto_deliver is not None:
            self._receipt_for(text, self.auto_deliver)
            if self.callback_urls.get(provider):
                task = asyncio.get_running_loop().create_task(self._push(text))
                self._push_tasks.add(task)
                task.add_done_callback(self._push_tasks.discard)
        self._notify()
        return text

    def _receipt_for(
        self,
        text: EmuText,
        delivered: bool,
        *,
        code: str | None = None,
        description: str | None = None,
        at: datetime | None = None,
    ) -> EmuReport:
        if text.provider == ALIYUN:
            default_code, default_description = (
                ("DELIVERED", "用户接收成功") if delivered else ("UNDELIV", "用户未接收")
            )
        else:
            default_code, default_description = (
                ("DELIVRD", "用户短信送达成功") if delivered else ("UNDELIV", "用户短信接收失败")
            )
        text.report = EmuReport(
            delivered,
            code or default_code,
            description or default_description,
            (at or self.now()).astimezone(BEIJING),
        )
        self._notify()
        return text.report

    def _aliyun_receipt(self, text: EmuText) -> JSONDict:
        assert text.report is not None
        return {
            "phone_number": text.phone,
            "send_time": _fmt(text.accepted_at),
            "report_time": _fmt(text.report.at),
            "success": text.report.delivered,
            "err_code": text.report.code,
            "err_msg": text.report.description,
            "sms_size": "1",
            "biz_id": text.provider_id,
            "out_id": text.out_id,
        }

    def _tencent_receipt(self, text: EmuText) -> JSONDict:
        assert text.report is not None
        item: JSONDict = {
            "user_receive_time": _fmt(text.report.at),
            "nationcode": "86",
            "mobile": text.phone,
            "report_status": "SUCCESS" if text.report.delivered else "FAIL",
            "errmsg": text.report.code,
            "description": text.report.description,
            "sid": text.provider_id,
        }
        if self.tencent_echo_session_context and text.out_id:
            item["ext"] = text.out_id
        return item

    async def _push(self, text: EmuText) -> None:
        url = self.callback_urls[text.provider]
        body = [self._aliyun_receipt(text) if text.provider == ALIYUN else self._tencent_receipt(text)]
        status, acknowledged = 0, False
        if self._session is not None:
            try:
                async with self._session.post(
                    url, json=body, timeout=aiohttp.ClientTimeout(total=5)
                ) as reply:
                    status = reply.status
                    raw = await reply.read()
                answer = json.loads(raw) if raw else {}
                key = "code" if text.provider == ALIYUN else "result"
                acknowledged = status == 200 and isinstance(answer, dict) and answer.get(key) == 0
            except (aiohttp.ClientError, TimeoutError, ValueError):
                acknowledged = False
        self.pushes.append(EmuPush(text.provider, url, body, status, acknowledged))
        self._notify()

    async def _hold(self, seconds: float) -> None:
        """Hold an answer (the client has given up by then), or until the emulator stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _template_problem(
        self, provider: str, sign: str, template: str, params: dict[str, str]
    ) -> str | None:
        """What is wrong with the parameters for the template: "unknown", "missing", "too_long",
        "url", "text_too_long", or None."""
        limit = self.max_param_chars.get(provider)
        if limit is not None and any(len(value) > limit for value in params.values()):
            return "too_long"
        if any(_URL.search(value) for value in params.values()):
            return "url"
        if not self.templates:
            return None
        body = self.templates.get(template)
        if body is None:
            return "unknown"
        pattern = _ALIYUN_VARIABLE if provider == ALIYUN else _TENCENT_VARIABLE
        if any(name not in params for name in pattern.findall(body)):
            return "missing"
        filled = pattern.sub(lambda m: params.get(m.group(1), ""), body)
        if len(f"【{sign}】{filled}") > self.max_text_chars:
            return "text_too_long"
        return None

    # ---------------------------------------------------------------- Alibaba Cloud

    @staticmethod
    def _aliyun_error(status: int, code: str, message: str) -> _Refusal:
        body = {
            "RequestId": _request_id(),
            "HostId": "dysmsapi.aliyuncs.com",
            "Code": code,
            "Message": message,
        }
        return _Refusal(status, body, code)

    async def _handle_aliyun(self, request: web.Request) -> web.Response:
        params: dict[str, str] = dict(request.query)
        try:
            form = await request.post()
        except (ValueError, ConnectionResetError):
            return web.Response(status=400)
        params.update({key: str(value) for key, value in form.items() if isinstance(value, str)})
        action = params.get("Action", "")
        self.requests.append((ALIYUN, action))
        try:
            self._aliyun_verify(request.method, params)
            if params.get("Version") != ALIYUN_VERSION:
                raise self._aliyun_error(400, "InvalidVersion", "Specified parameter Version is not valid.")
            if action == "SendSms":
                status, body = await self._aliyun_send(params)
            elif action == "QuerySendDetails":
                status, body = 200, self._aliyun_query(params)
            else:
                raise self._aliyun_error(404, "InvalidAction.NotFound", "Specified api is not found.")
        except _Refusal as refusal:
            self.refused.append((ALIYUN, action, refusal.code))
            self._notify()
            return web.json_response(refusal.body, status=refusal.status)
        return web.json_response(body, status=status)

    def _aliyun_verify(self, method: str, params: dict[str, str]) -> None:
        for name in ("AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce", "Timestamp", "Action"):
            if not params.get(name):
                raise self._aliyun_error(400, "MissingParameter", f"The input parameter {name} is missing.")
        secret = self.aliyun_keys.get(params["AccessKeyId"])
        if secret is None:
            raise self._aliyun_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            raise self._aliyun_error(
                400, "InvalidParameter", "The signature method or version is not supported."
            )
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise self._aliyun_error(
                400, "InvalidTimeStamp.Format", "Specified time stamp is not valid."
            ) from None
        if abs(datetime.now(UTC) - stamp) > SIGNATURE_SKEW:
            raise self._aliyun_error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date has expired."
            )
        to_sign, expected = aliyun_expected(params, secret, method)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise self._aliyun_error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + to_sign,
            )
        if params["SignatureNonce"] in self._nonces:
            raise self._aliyun_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(params["SignatureNonce"])

    async def _aliyun_send(self, params: dict[str, str]) -> tuple[int, JSONDict]:
        def business(code: str, message: str) -> _Refusal:
            return _Refusal(200, {"RequestId": _request_id(), "Code": code, "Message": message}, code)

        fault = self._take_fault(ALIYUN)
        if fault is not None and fault.kind == "server_error":
            raise self._aliyun_error(
                500, "InternalError", "The request processing has failed due to some unknown error."
            )
        if fault is not None and fault.kind == "throttle":
            raise business("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
        if fault is not None and fault.kind == "permanent":
            raise business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                raise self._aliyun_error(400, "MissingParameter", f"The input parameter {name} is missing.")
        phones = [_mobile(number) for number in params["PhoneNumbers"].split(",")]
        if not phones or any(phone is None for phone in phones):
            raise business("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if self.sign_names is not None and params["SignName"] not in self.sign_names:
            raise business("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            raise business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值") from None
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise business("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        template = params["TemplateCode"]
        problem = self._template_problem(ALIYUN, params["SignName"], template, values)
        if problem is not None:
            code, message = {
                "unknown": ("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"),
                "missing": ("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量中存在未赋值变量"),
                "too_long": ("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"),
                "url": ("isv.PARAM_NOT_SUPPORT_URL", "不支持URL"),
                "text_too_long": ("isv.INVALID_PARAMETERS", "短信内容超过500字"),
            }[problem]
            raise business(code, message)
        accepted: list[EmuText] = []
        for phone in phones:
            assert phone is not None
            window = self._limited(ALIYUN, phone, template)
            if window is not None:
                most = dict(self.limits[ALIYUN])[window]
                word = _ALIYUN_WINDOW_WORDS.get(window, f"{window:.0f}秒级")
                raise business("isv.BUSINESS_LIMIT_CONTROL", f"触发{word}流控Permits:{most}")
            accepted.append(
                self._accept(ALIYUN, phone, params["SignName"], template, values, params.get("OutId", ""))
            )
        body = {"RequestId": _request_id(), "Code": "OK", "Message": "OK", "BizId": accepted[0].provider_id}
        if fault is not None and fault.kind == "timeout":
            for text in accepted:
                text.fault = "timeout"
            await self._hold(fault.hang)
        return 200, body

    def _aliyun_query(self, params: dict[str, str]) -> JSONDict:
        phone = _mobile(params.get("PhoneNumber", ""))
        day = params.get("SendDate", "")
        if phone is None:
            raise _Refusal(
                200,
                {"RequestId": _request_id(), "Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"},
                "isv.MOBILE_NUMBER_ILLEGAL",
            )
        if not re.fullmatch(r"\d{8}", day):
            raise self._aliyun_error(400, "InvalidParameter", "Specified parameter SendDate is not valid.")
        try:
            size, page = int(params.get("PageSize", "10")), int(params.get("CurrentPage", "1"))
        except ValueError:
            raise self._aliyun_error(
                400, "InvalidParameter", "PageSize and CurrentPage are numbers."
            ) from None
        if not 1 <= size <= 50 or page < 1:
            raise self._aliyun_error(400, "InvalidParameter", "PageSize is 1 to 50, CurrentPage from 1.")
        biz_id = params.get("BizId")
        found = [
            text
            for text in reversed(self._texts)
            if text.provider == ALIYUN
            and text.phone == phone
            and text.accepted_at.astimezone(BEIJING).strftime("%Y%m%d") == day
            and (not biz_id or text.provider_id == biz_id)
        ]
        chunk = found[(page - 1) * size : page * size]
        dtos = [
            {
                "PhoneNum": text.phone,
                "SendStatus": 1 if text.report is None else 3 if text.report.delivered else 2,
                "ErrCode": "" if text.report is None else text.report.code,
                "TemplateCode": text.template_code,
                "Content": self.render(text),
                "SendDate": _fmt(text.accepted_at),
                "ReceiveDate": "" if text.report is None else _fmt(text.report.at),
                "OutId": text.out_id,
            }
            for text in chunk
        ]
        return {
            "RequestId": _request_id(),
            "Code": "OK",
            "Message": "OK",
            "TotalCount": len(found),
            "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos},
        }

    # ---------------------------------------------------------------- Tencent Cloud

    @staticmethod
    def _tencent_error(code: str, message: str, status: int = 200) -> _Refusal:
        return _Refusal(
            status,
            {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}},
            code,
        )

    async def _handle_tencent(self, request: web.Request) -> web.Response:
        action = request.headers.get("X-TC-Action", "")
        self.requests.append((TENCENT, action))
        try:
            raw = await request.read()
        except ConnectionResetError:
            return web.Response(status=400)
        try:
            self._tencent_verify(request, raw)
            if request.headers.get("X-TC-Version") != TENCENT_VERSION:
                raise self._tencent_error("NoSuchVersion", "The requested version does not exist.")
            if not request.headers.get("X-TC-Region"):
                raise self._tencent_error("MissingParameter", "The request is missing X-TC-Region.")
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise self._tencent_error("FailedOperation.JsonParseFail", "解析请求包体时候失败。") from None
            if not isinstance(data, dict):
                raise self._tencent_error("FailedOperation.JsonParseFail", "解析请求包体时候失败。")
            if action == "SendSms":
                status, body = await self._tencent_send(data)
            elif action == "PullSmsSendStatusByPhoneNumber":
                status, body = 200, self._tencent_pull(data)
            else:
                raise self._tencent_error("InvalidAction", "The requested action does not exist.")
        except _Refusal as refusal:
            self.refused.append((TENCENT, action, refusal.code))
            self._notify()
            return web.json_response(refusal.body, status=refusal.status)
        return web.json_response({"Response": {**body, "RequestId": str(uuid.uuid4())}}, status=status)

    def _tencent_verify(self, request: web.Request, raw: bytes) -> None:
        found = _TC3.fullmatch(request.headers.get("Authorization", "").strip())
        if found is None:
            raise self._tencent_error("AuthFailure.InvalidAuthorization", "Authorization is not valid.")
        secret = self.tencent_keys.get(found["id"])
        if secret is None:
            raise self._tencent_error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            raise self._tencent_error(
                "AuthFailure.InvalidAuthorization", "X-TC-Timestamp is not valid."
            ) from None
        if abs(datetime.now(UTC).timestamp() - timestamp) > TC3_SKEW:
            raise self._tencent_error("AuthFailure.SignatureExpire", "The signature has expired.")
        signed = found["signed"].lower().split(";")
        if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
            raise self._tencent_error(
                "AuthFailure.SignatureFailure", "SignedHeaders must list content-type and host, sorted."
            )
        if any(name not in request.headers for name in signed):
            raise self._tencent_error("AuthFailure.SignatureFailure", "A signed header is missing.")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        headers = {name: request.headers[name] for name in signed}
        expected = tc3_expected(
            secret,
            method=request.method,
            query=request.query_string,
            headers=headers,
            signed=signed,
            body=raw,
            timestamp=timestamp,
            date=date,
            service="sms",
        )
        if (
            found["date"] != date
            or found["service"] != "sms"
            or not hmac.compare_digest(expected, found["signature"])
        ):
            raise self._tencent_error(
                "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
            )

    async def _tencent_send(self, data: JSONDict) -> tuple[int, JSONDict]:
        fault = self._take_fault(TENCENT)
        if fault is not None and fault.kind == "server_error":
            raise self._tencent_error("InternalError", "An internal error occurred.", status=500)
        if str(data.get("SmsSdkAppId", "")) != self.tencent_sdk_app_id:
            raise self._tencent_error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId 不存在。")
        numbers = data.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not numbers:
            raise self._tencent_error("MissingParameter.EmptyPhoneNumberSet", "传入的号码列表为空。")
        if len(numbers) > 200:
            raise self._tencent_error(
                "LimitExceeded.PhoneNumberCountLimit", "单次提交的手机号个数超过200个。"
            )
        sign = str(data.get("SignName") or "")
        if self.sign_names is not None and sign not in self.sign_names:
            raise self._tencent_error(
                "FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误。"
            )
        values = data.get("TemplateParamSet") or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise self._tencent_error("InvalidParameter", "TemplateParamSet 是字符串的列表。")
        params = {str(i): v for i, v in enumerate(values, start=1)}
        template = str(data.get("TemplateId") or "")
        problem = self._template_problem(TENCENT, sign, template, params)
        if problem is not None:
            code, message = {
                "unknown": ("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配。"),
                "missing": (
                    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                    "请求内容与审核通过的模板内容不匹配。",
                ),
                "too_long": (
                    "InvalidParameterValue.TemplateParameterLengthLimit",
                    "单个模板变量字符数超过限制。",
                ),
                "url": (
                    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
                    "禁止在模板变量中使用 URL。",
                ),
                "text_too_long": ("InvalidParameterValue.ContentLengthLimit", "请求的短信内容太长。"),
            }[problem]
            raise self._tencent_error(code, message)
        context = str(data.get("SessionContext") or "")
        statuses: list[JSONDict] = []
        accepted: list[EmuText] = []
        for number in numbers:
            phone = _mobile(number)
            entry: JSONDict = {
                "SerialNo": "",
                "PhoneNumber": str(number),
                "Fee": 0,
                "SessionContext": context,
                "IsoCode": "CN",
            }
            window = self._limited(TENCENT, phone, template) if phone is not None else None
            if fault is not None and fault.kind == "throttle":
                entry.update(
                    Code="LimitExceeded.PhoneNumberThirtySecondLimit",
                    Message="单个手机号30秒内下发短信条数超过设定的上限",
                )
            elif phone is None or (fault is not None and fault.kind == "permanent"):
                entry.update(Code="InvalidParameterValue.IncorrectPhoneNumber", Message="手机号格式错误")
            elif window is not None:
                code = _TENCENT_WINDOW_CODES.get(window, "LimitExceeded.DeliveryFrequencyLimit")
                entry.update(Code=code, Message="下发短信命中了频率限制策略")
            else:
                text = self._accept(TENCENT, phone, sign, template, dict(params), context)
                accepted.append(text)
                entry.update(SerialNo=text.provider_id, Fee=1, Code="Ok", Message="send success")
            statuses.append(entry)
        if fault is not None and fault.kind == "timeout":
            for text in accepted:
                text.fault = "timeout"
            await self._hold(fault.hang)
        if all(entry["Code"] != "Ok" for entry in statuses):
            self.refused.append((TENCENT, "SendSms", str(statuses[0]["Code"])))
        return 200, {"SendStatusSet": statuses}

    def _tencent_pull(self, data: JSONDict) -> JSONDict:
        if str(data.get("SmsSdkAppId", "")) != self.tencent_sdk_app_id:
            raise self._tencent_error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId 不存在。")
        phone = _mobile(data.get("PhoneNumber", ""))
        if phone is None:
            raise self._tencent_error("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误")
        try:
            begin = int(data["BeginTime"])
            end = int(data.get("EndTime") or self.now().timestamp())
            limit = int(data["Limit"])
            offset = int(data["Offset"])
        except (KeyError, TypeError, ValueError):
            raise self._tencent_error(
                "MissingParameter", "BeginTime, Offset and Limit are required."
            ) from None
        if not 1 <= limit <= 100:
            raise self._tencent_error("InvalidParameterValue.LimitVerifyFail", "参数 Limit 校验失败。")
        if offset != 0:
            raise self._tencent_error("InvalidParameterValue.OffsetVerifyFail", "参数 Offset 校验失败。")
        items = []
        for text in self._texts:
            report = text.report
            if text.provider != TENCENT or text.phone != phone or report is None:
                continue  # only receipts that are in are pulled
            received = int(report.at.timestamp())
            if not begin <= received <= end:
                continue
            items.append(
                {
                    "UserReceiveTime": received,
                    "CountryCode": "86",
                    "SubscriberNumber": text.phone,
                    "PhoneNumber": "+86" + text.phone,
                    "SerialNo": text.provider_id,
                    "ReportStatus": "SUCCESS" if report.delivered else "FAIL",
                    "Description": report.code,
                    "SessionContext": text.out_id if self.tencent_echo_session_context else "",
                }
            )
        return {"PullSmsSendStatusSet": items[:limit]}
