"""Alibaba Cloud SMS (dysmsapi, API version 2017-05-25) over its signed HTTP API.

The RPC style: every parameter, the common ones (AccessKeyId, Timestamp, SignatureNonce...) and the
action's (PhoneNumbers, SignName, TemplateCode, TemplateParam, OutId), is sent form-encoded in one
POST and signed with HMAC-SHA1 over the sorted, percent-encoded parameters (SignatureVersion 1.0):
https://help.aliyun.com/document_detail/101343.html (the SMS signature page, with a worked SendSms
example) and https://help.aliyun.com/document_detail/28839.html (the RPC signature mechanism).

Why not the official SDK: the Tea SDK (alibabacloud_dysmsapi20170525) pulls a large tree of
dependencies, and one aiohttp client lets the tests and the sandbox point the endpoint at the local
emulator (smsapi). Nothing here logs a phone number, a parameter value or the provider's message
(Aliyun's SignatureDoesNotMatch message repeats the whole string to sign, number included): codes only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import SecretStr
from yarl import URL

from bot.sms.port import Answer, Found, Outcome, Report, Text
from bot.sms.wire import BEIJING, NoAnswer, Unsent, mainland, post, pushed_receipts, unanswered

log = logging.getLogger(__name__)

VERSION = "2017-05-25"
REGION = "cn-hangzhou"  # dysmsapi's region for the mainland endpoint
# Aliyun's dates (SendDate, ReceiveDate, the callback's report_time) are Beijing time.
PAGE_SIZE = 50  # QuerySendDetails' largest page
MAX_PAGES = 20  # at most 1000 records of one number on one day are read

# Outcomes by Aliyun's code. Sources: the API error codes,
# https://help.aliyun.com/document_detail/101346.html (isv.*/isp.*), and the common (gateway) codes of
# the RPC API. A code not listed is judged by its family in `outcome_of`.
CODES: dict[str, Outcome] = {
    # Taken: BizId is the provider's id.
    "OK": Outcome.ACCEPTED,
    # Flow control. BUSINESS_LIMIT_CONTROL is the per-number limit (one signature, template and
    # number: 1 a minute, 5 an hour, 10 a day by default); DAY_/MONTH_LIMIT_CONTROL are the account's own
    # caps set in the console; Throttling.* is the API's request rate. All mend by waiting.
    "isv.BUSINESS_LIMIT_CONTROL": Outcome.THROTTLED,
    "isv.DAY_LIMIT_CONTROL": Outcome.THROTTLED,
    "isv.MONTH_LIMIT_CONTROL": Outcome.THROTTLED,
    "Throttling": Outcome.THROTTLED,
    "Throttling.User": Outcome.THROTTLED,
    "Throttling.Api": Outcome.THROTTLED,
    # The platform's own faults: try again after a backoff.
    "isp.SYSTEM_ERROR": Outcome.RETRY,
    "isp.GATEWAY_ERROR": Outcome.RETRY,
    "ServiceUnavailable": Outcome.RETRY,
    "InternalError": Outcome.RETRY,
    "UnknownError": Outcome.RETRY,
    # The request's freshness: our clock was off, or a nonce was reused; a new request (a new
    # timestamp and nonce) can pass, so these are retried rather than dropped.
    "InvalidTimeStamp.Expired": Outcome.RETRY,
    "SignatureNonceUsed": Outcome.RETRY,
    # The number: not a valid mainland mobile, or too many in one request.
    "isv.MOBILE_NUMBER_ILLEGAL": Outcome.FAILED,
    "isv.MOBILE_COUNT_OVER_LIMIT": Outcome.FAILED,
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": Outcome.FAILED,
    # The template and its parameters: unapproved template, a variable missing, too long, not JSON,
    # a URL or a blacklisted word in a variable, content refused.
    "isv.SMS_TEMPLATE_ILLEGAL": Outcome.FAILED,
    "isv.TEMPLATE_MISSING_PARAMETERS": Outcome.FAILED,
    "isv.INVALID_JSON_PARAM": Outcome.FAILED,
    "isv.INVALID_PARAMETERS": Outcome.FAILED,
    "isv.PARAM_LENGTH_LIMIT": Outcome.FAILED,
    "isv.PARAM_NOT_SUPPORT_URL": Outcome.FAILED,
    "isv.BLACK_KEY_CONTROL_LIMIT": Outcome.FAILED,
    "isv.SMS_CONTENT_ILLEGAL": Outcome.FAILED,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": Outcome.FAILED,
    # The signature (签名): unknown, not approved, not usable, or a wrong extension code.
    "isv.SMS_SIGNATURE_ILLEGAL": Outcome.FAILED,
    "isv.SMS_SIGN_ILLEGAL": Outcome.FAILED,
    "isv.SIGN_STATE_ILLEGAL": Outcome.FAILED,
    "isv.EXTEND_CODE_ERROR": Outcome.FAILED,
    # The account: no balance, service stopped or not subscribed, RAM permissions, a foreign source IP.
    "isv.AMOUNT_NOT_ENOUGH": Outcome.FAILED,
    "isv.OUT_OF_SERVICE": Outcome.FAILED,
    "isv.PRODUCT_UN_SUBSCRIPT": Outcome.FAILED,
    "isv.PRODUCT_UNSUBSCRIBE": Outcome.FAILED,
    "isv.ACCOUNT_NOT_EXISTS": Outcome.FAILED,
    "isv.ACCOUNT_ABNORMAL": Outcome.FAILED,
    "isv.DENY_IP_RANGE": Outcome.FAILED,
    "isp.RAM_PERMISSION_DENY": Outcome.FAILED,
    # Our credentials and request: a wrong or disabled AccessKey, a wrong secret (the signature does not
    # match), a parameter missing or malformed. Only the settings can mend these.
    "InvalidAccessKeyId.NotFound": Outcome.FAILED,
    "InvalidAccessKeyId.Inactive": Outcome.FAILED,
    "SignatureDoesNotMatch": Outcome.FAILED,
    "IncompleteSignature": Outcome.FAILED,
    "MissingParameter": Outcome.FAILED,
    "InvalidParameter": Outcome.FAILED,
    "Forbidden.RAM": Outcome.FAILED,
}


def outcome_of(code: str, status: int = 200) -> Outcome:
    """The outcome of Aliyun's `code` (in an answer of HTTP `status`): the table, else the family
    (isp.* the platform's fault, isv.* ours, Throttling* a rate), else the HTTP status."""
    found = CODES.get(code)
    if found is not None:
        return found
    if code.startswith("Throttling"):
        return Outcome.THROTTLED
    if code.startswith("isp."):
        return Outcome.RETRY
    if code.startswith("isv."):
        return Outcome.FAILED
    return Outcome.RETRY if status >= 500 or status == 0 else Outcome.FAILED


def retry_after(code: str, message: str, now: datetime) -> float | None:
    """How long Aliyun's flow control asks us to wait. The per-number windows of a minute and an hour
    are natural ones in UTC+8 (14:03:00-14:03:59), the day is 24 hours from the send
    (https://help.aliyun.com/document_detail/44335.html); BUSINESS_LIMIT_CONTROL's message names the
    window ("触发分钟级流控Permits:1", "触发小时级流控Permits:5", "触发天级流控Permits:10")."""
    local = now.astimezone(BEIJING)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        if "分钟" in message:
            return 60.0 - local.second - local.microsecond / 1e6
        if "小时" in message:
            return 3600.0 - local.minute * 60 - local.second - local.microsecond / 1e6
        if "天" in message:
            return 86400.0
        return 60.0
    if code == "isv.DAY_LIMIT_CONTROL":
        return _until(local, (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))
    if code == "isv.MONTH_LIMIT_CONTROL":
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return _until(local, (first + timedelta(days=32)).replace(day=1))
    if code.startswith("Throttling"):
        return 1.0
    return None


def _until(now: datetime, then: datetime) -> float:
    return max(1.0, (then - now).total_seconds())


# ----------------------------------------------------------------------------------- the signature

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def percent_encode(value: str) -> str:
    """Aliyun's POP encoding: RFC 3986, UTF-8; only A-Z a-z 0-9 - _ . ~ stay as they are (a space is
    %20, never +; * is %2A)."""
    return "".join(chr(byte) if byte in _UNRESERVED else f"%{byte:02X}" for byte in value.encode("utf-8"))


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    """HTTPMethod & percentEncode("/") & percentEncode(the canonicalized query string): the parameters
    but Signature, sorted by name, each name=value percent-encoded, joined by &."""
    canonical = "&".join(
        f"{percent_encode(name)}={percent_encode(params[name])}"
        for name in sorted(params)
        if name != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", UTF-8 of StringToSign))."""
    digest = hmac.new(
        (secret + "&").encode("utf-8"), string_to_sign(params, method).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


# ----------------------------------------------------------------------------------- helpers


def beijing_time(value: object) -> datetime | None:
    """Aliyun's "2019-01-08 16:44:13" (Beijing time) as an aware datetime; None if absent or not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        return None


def redact(message: str, text: Text | None = None, phone: str | None = None) -> str:
    """The provider's words without the number or the parameters (Aliyun echoes its string to sign)."""
    cut = re.split(r"(?i)(?:server\s+)?string\s*to\s*sign", message, maxsplit=1)[0].strip().rstrip(":：,， ")
    secrets = [phone] if phone else []
    if text is not None:
        secrets += [text.phone, *text.params.values()]
    for value in secrets:
        if value:
            for form in {value, percent_encode(value), percent_encode(percent_encode(value))}:
                cut = cut.replace(form, "***")
    cut = re.sub(r"1\d{10}", "***", cut)  # any mainland number left
    return cut[:200]


class AliyunSms:
    """The Provider port over dysmsapi 2017-05-25 (SendSms, QuerySendDetails, the SmsReport push)."""

    name = "aliyun"
    # One variable: 20 characters, a conservative choice. Aliyun's variable rules for notification
    # templates (https://help.aliyun.com/document_detail/463270.html, and the TemplateRule examples at
    # https://help.aliyun.com/document_detail/2806243.html) set a length per variable kind; the figure
    # usually given for "other" variables (names, numbers) is 1-35, which we could not read on a current
    # official page, and isv.PARAM_LENGTH_LIMIT refuses a text over it. 20 keeps every value we send (the
    # 14-digit receipt, a date, a state, a village) and stays under any cap we saw for those kinds.
    max_param_chars = 20
    # The whole text: signature (with its 【】) + the rendered template at most 500 characters
    # (https://help.aliyun.com/document_detail/44335.html: "短信内容不超过500字"; 70 a part, 67 a
    # part once it is long, billed per part).
    max_text_chars = 500

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: SecretStr,
        sign_name: str,
        *,
        endpoint: str = "https://dysmsapi.aliyuncs.com",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.sign_name = sign_name
        url = URL(endpoint)
        self.endpoint = url.with_path("/") if url.path in ("", "/") else url
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    # ------------------------------------------------------------------------- the port

    async def send(self, text: Text) -> Answer:
        params = {
            "PhoneNumbers": mainland(text.phone),
            "SignName": self.sign_name,
            "TemplateCode": text.template_code,
            "TemplateParam": json.dumps(dict(text.params), ensure_ascii=False, separators=(",", ":")),
            "OutId": text.out_id,
        }
        try:
            status, body = await self._call("SendSms", params)
        except (Unsent, NoAnswer) as exc:
            return unanswered(log, "aliyun", exc)
        code = str(body.get("Code") or (f"HTTP {status}" if status != 200 else "NoCode"))
        message = redact(str(body.get("Message") or ""), text)
        outcome = outcome_of(code, status)
        if outcome is Outcome.ACCEPTED:  # "OK" is taken, even without a BizId: never sent again
            log.info("sms aliyun SendSms: OK")
            return Answer(Outcome.ACCEPTED, provider_id=str(body.get("BizId") or "") or None, code=code)
        log.info("sms aliyun SendSms: %s (HTTP %s) -> %s", code, status, outcome.value)
        wait = retry_after(code, str(body.get("Message") or ""), datetime.now(UTC))
        return Answer(
            outcome, code=code, message=message, retry_after=wait if outcome is Outcome.THROTTLED else None
        )

    async def find(self, phone: str, out_id: str, sent_on: datetime) -> Found | None:
        """The text with `out_id` among QuerySendDetails' records of `phone` on the (Beijing) day of
        `sent_on`, and the next day's too when `sent_on` is within ten minutes of midnight. Raises
        ConnectionError when Aliyun cannot be asked (never "not found" for "could not ask")."""
        for day in self._days(sent_on):
            for record in await self._records(phone, day):
                if str(record.get("OutId") or "") == out_id:
                    return Found(provider_id=None, report=self._report(record))
        return None

    async def reports(self, phone: str, sent_on: datetime) -> list[Report]:
        """The receipts (SendStatus 2 failed, 3 delivered) of the texts to `phone` on the day of `sent_on`."""
        found = []
        for record in await self._records(phone, self._days(sent_on)[0]):
            report = self._report(record)
            if report is not None:
                found.append(report)
        return found

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> tuple[list[Report], bytes]:
        """Aliyun's SmsReport push: a JSON array of {phone_number, send_time, report_time, success,
        err_code, err_msg, sms_size, biz_id, out_id}; it is acknowledged with {"code":0,"msg":"成功"}."""
        reports = []
        for item in pushed_receipts(body, "phone_number"):
            success = item.get("success")
            delivered = success is True or (isinstance(success, str) and success.lower() == "true")
            code = str(item.get("err_code") or ("DELIVERED" if delivered else "UNKNOWN"))
            reports.append(
                Report(
                    phone=mainland(item["phone_number"]),
                    delivered=delivered,
                    code=code,
                    at=beijing_time(item.get("report_time")),
                    out_id=str(item["out_id"]) if item.get("out_id") else None,
                    provider_id=str(item["biz_id"]) if item.get("biz_id") else None,
                    description=redact(str(item.get("err_msg") or ""), phone=item["phone_number"]),
                )
            )
        log.info("sms aliyun callback: %d receipt(s)", len(reports))
        return reports, json.dumps({"code": 0, "msg": "成功"}, ensure_ascii=False).encode("utf-8")

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------------------- the API

    def _common(self, action: str) -> dict[str, str]:
        return {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": REGION,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": VERSION,
        }

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def _call(self, action: str, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """POST one signed RPC call; (HTTP status, the JSON answer or {}). Raises Unsent when the
        request never reached Aliyun, NoAnswer when it may have and no answer came."""
        signed = {**self._common(action), **params}
        signed["Signature"] = aliyun_signature(signed, self._secret.get_secret_value(), "POST")
        status, raw = await post(await self._client(), self.endpoint, data=signed, timeout=self.timeout)
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            body = {}
        return status, body if isinstance(body, dict) else {}

    async def _records(self, phone: str, day: datetime) -> list[dict[str, Any]]:
        """QuerySendDetails' SmsSendDetailDTO records of `phone` on `day` (all pages)."""
        records: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            query = {
                "PhoneNumber": mainland(phone),
                "SendDate": day.strftime("%Y%m%d"),
                "PageSize": str(PAGE_SIZE),
                "CurrentPage": str(page),
            }
            try:
                status, body = await self._call("QuerySendDetails", query)
            except (Unsent, NoAnswer) as exc:
                log.warning("sms aliyun QuerySendDetails: %s", exc.code)
                raise ConnectionError(f"aliyun QuerySendDetails: {exc.code}") from None
            code = str(body.get("Code") or f"HTTP {status}")
            if code != "OK" or status != 200:
                log.warning("sms aliyun QuerySendDetails: %s (HTTP %s)", code, status)
                raise ConnectionError(f"aliyun QuerySendDetails: {code}")
            dtos = body.get("SmsSendDetailDTOs") or {}
            batch = dtos.get("SmsSendDetailDTO") if isinstance(dtos, dict) else dtos
            batch = [item for item in batch or [] if isinstance(item, dict)]
            records += batch
            total = int(body.get("TotalCount") or 0)
            if len(batch) < PAGE_SIZE or len(records) >= total:
                break
        return records

    @staticmethod
    def _days(sent_on: datetime) -> list[datetime]:
        local = (sent_on if sent_on.tzinfo else sent_on.replace(tzinfo=UTC)).astimezone(BEIJING)
        days = [local]
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        if midnight - local <= timedelta(minutes=10):
            days.append(midnight)
        return days

    @staticmethod
    def _report(record: Mapping[str, Any]) -> Report | None:
        """A record's receipt: SendStatus 1 waits for one, 2 failed, 3 delivered."""
        try:
            status = int(record.get("SendStatus") or 0)
        except (TypeError, ValueError):
            return None
        if status not in (2, 3):
            return None
        delivered = status == 3
        return Report(
            phone=mainland(str(record.get("PhoneNum") or "")),
            delivered=delivered,
            code=str(record.get("ErrCode") or ("DELIVERED" if delivered else "UNKNOWN")),
            at=beijing_time(record.get("ReceiveDate")),
            out_id=str(record["OutId"]) if record.get("OutId") else None,
        )
