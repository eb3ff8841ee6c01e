"""Tencent Cloud SMS (API 3.0, service sms, version 2021-01-11) over its signed HTTP API.

One JSON POST per action with the X-TC-Action/X-TC-Version/X-TC-Timestamp/X-TC-Region headers and an
Authorization header signed with TC3-HMAC-SHA256 ("Signature v3", the same page in every product's
API docs, e.g. https://www.tencentcloud.com/document/api/1021/34193; its worked example, a CVM call with
fixed SecretId/SecretKey/timestamp, is the test vector of `tc3_authorization`). SendSms takes
PhoneNumberSet (E.164), SmsSdkAppId, SignName, TemplateId, TemplateParamSet (the values in the
template's order) and SessionContext (our out-id); PullSmsSendStatusByPhoneNumber pulls receipts.

Why not the official SDK: tencentcloud-sdk-python is synchronous (requests) and would block the event
loop; one aiohttp client also lets the tests and the sandbox point the endpoint at the local emulator
(smsapi). Nothing here logs a phone number or a parameter value: codes only.

`find` and SessionContext: a pulled receipt carries SessionContext only when Tencent has turned
that on for the account ("默认为空，如需开通请联系腾讯云短信小助手"), and a text appears in the pull
only once the carrier's receipt is in ("仅当运营商有返回短信接收状态时回包中才会有状态数据"; both
from the PullSmsSendStatus data type, tencentcloud-sdk-python sms/v20210111/models.py). So `find`
can say "accepted" only for a text whose receipt came back, on an account that echoes
SessionContext; otherwise it answers None (unknown: the sender sends again). A township using
Tencent should ask Tencent's SMS assistant to enable the echo.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import SecretStr
from yarl import URL

from bot.sms.port import Answer, Found, Outcome, Report, Text
from bot.sms.wire import BEIJING, NoAnswer, Unsent, mainland, post, pushed_receipts, unanswered

log = logging.getLogger(__name__)

SERVICE = "sms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
PULL_LIMIT = 100  # PullSmsSendStatusByPhoneNumber's largest Limit (its Offset is fixed at 0)

# Outcomes by Tencent's code (SendStatusSet[].Code, or Response.Error.Code for the whole request).
# Sources: the SMS API 3.0 error codes, https://cloud.tencent.com/document/api/382/59177 (also
# tencentcloud-sdk-python's sms/v20210111/errorcodes.py), and the API 3.0 common error codes. A code not
# listed is judged by its family in `outcome_of`.
CODES: dict[str, Outcome] = {
    # Taken: SerialNo is the provider's id.
    "Ok": Outcome.ACCEPTED,
    # Frequency limits per number (30 seconds, an hour, a day, the same content in a day; set in the
    # console), the application's daily cap, and the API's request rate: wait.
    "LimitExceeded.PhoneNumberThirtySecondLimit": Outcome.THROTTLED,
    "LimitExceeded.PhoneNumberOneHourLimit": Outcome.THROTTLED,
    "LimitExceeded.PhoneNumberDailyLimit": Outcome.THROTTLED,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": Outcome.THROTTLED,
    "LimitExceeded.DeliveryFrequencyLimit": Outcome.THROTTLED,
    "LimitExceeded.AppDailyLimit": Outcome.THROTTLED,
    "LimitExceeded.DailyLimit": Outcome.THROTTLED,
    "RequestLimitExceeded": Outcome.THROTTLED,
    # Tencent's own faults and time-outs towards the carriers: try again after a backoff.
    "InternalError": Outcome.RETRY,
    "InternalError.Timeout": Outcome.RETRY,
    "InternalError.SendAndRecvFail": Outcome.RETRY,
    "InternalError.OtherError": Outcome.RETRY,
    "InternalError.UnknownError": Outcome.RETRY,
    "InternalError.RequestTimeException": Outcome.RETRY,  # our clock was off: a new request can pass
    "ResourceUnavailable": Outcome.RETRY,
    "ServiceUnavailable": Outcome.RETRY,
    # The signature's freshness (X-TC-Timestamp more than 5 minutes off): a new request can pass.
    "AuthFailure.SignatureExpire": Outcome.RETRY,
    # The number: malformed, unsubscribed or on the carriers' do-not-disturb list, too many at once.
    "InvalidParameterValue.IncorrectPhoneNumber": Outcome.FAILED,
    "FailedOperation.PhoneNumberInBlacklist": Outcome.FAILED,
    "FailedOperation.PhoneNumberOnBlacklist": Outcome.FAILED,
    "LimitExceeded.PhoneNumberCountLimit": Outcome.FAILED,
    "MissingParameter.EmptyPhoneNumberSet": Outcome.FAILED,
    # The template and its parameters: unapproved or not matching, a parameter too long, a URL or a
    # sensitive word in one, the whole text too long.
    "FailedOperation.TemplateIncorrectOrUnapproved": Outcome.FAILED,
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": Outcome.FAILED,
    "FailedOperation.MissingTemplateList": Outcome.FAILED,
    "InvalidParameterValue.TemplateParameterLengthLimit": Outcome.FAILED,
    "InvalidParameterValue.TemplateParameterFormatError": Outcome.FAILED,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": Outcome.FAILED,
    "InvalidParameterValue.ContentLengthLimit": Outcome.FAILED,
    "FailedOperation.ContainSensitiveWord": Outcome.FAILED,
    "InvalidParameter.DirtyWordFound": Outcome.FAILED,
    # The signature (签名): unapproved or malformed.
    "FailedOperation.SignatureIncorrectOrUnapproved": Outcome.FAILED,
    "FailedOperation.MissingSignatureList": Outcome.FAILED,
    # The account and the application: no balance in the SMS package, in arrears, the SdkAppId wrong or
    # disabled, no permission, IP not allowed.
    "FailedOperation.InsufficientBalanceInSmsPackage": Outcome.FAILED,
    "UnauthorizedOperation.SerivceSuspendDueToArrears": Outcome.FAILED,
    "UnauthorizedOperation.SdkAppIdIsDisabled": Outcome.FAILED,
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": Outcome.FAILED,
    "UnauthorizedOperation.RequestPermissionDeny": Outcome.FAILED,
    "UnauthorizedOperation.RequestIpNotInWhitelist": Outcome.FAILED,
    "InvalidParameterValue.SdkAppIdNotExist": Outcome.FAILED,
    # Our credentials and request: a wrong SecretId or SecretKey (AuthFailure.*, but SignatureExpire
    # above), a malformed request. Only the settings can mend these.
    "AuthFailure.SecretIdNotFound": Outcome.FAILED,
    "AuthFailure.SignatureFailure": Outcome.FAILED,
    "AuthFailure.InvalidSecretId": Outcome.FAILED,
    "AuthFailure.UnauthorizedOperation": Outcome.FAILED,
    "FailedOperation.FailResolvePacket": Outcome.FAILED,
    "FailedOperation.JsonParseFail": Outcome.FAILED,
    "InvalidAction": Outcome.FAILED,
    "NoSuchVersion": Outcome.FAILED,
}


def outcome_of(code: str, status: int = 200) -> Outcome:
    """The outcome of Tencent's `code` (in an answer of HTTP `status`): the table, else the family
    (InternalError.* retried, LimitExceeded.* waited for, AuthFailure/FailedOperation/Invalid*/
    Unauthorized*/Unsupported* failed), else the HTTP status."""
    found = CODES.get(code)
    if found is not None:
        return found
    family = code.split(".", 1)[0]
    if family in ("InternalError", "ResourceUnavailable", "ServiceUnavailable"):
        return Outcome.RETRY
    if family in ("LimitExceeded", "RequestLimitExceeded"):
        return Outcome.THROTTLED
    if family in (
        "AuthFailure",
        "FailedOperation",
        "InvalidParameter",
        "InvalidParameterValue",
        "MissingParameter",
        "UnauthorizedOperation",
        "UnsupportedOperation",
    ):
        return Outcome.FAILED
    return Outcome.RETRY if status >= 500 or status == 0 else Outcome.FAILED


def retry_after(code: str, now: datetime) -> float | None:
    """How long Tencent's frequency limit asks us to wait: 30 seconds, an hour, or until the next
    (Beijing) day for the daily limits."""
    local = now.astimezone(BEIJING)
    tomorrow = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    waits = {
        "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
        "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
        "LimitExceeded.DeliveryFrequencyLimit": 60.0,
        "RequestLimitExceeded": 1.0,
    }
    if code in waits:
        return waits[code]
    if code in (
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.AppDailyLimit",
        "LimitExceeded.DailyLimit",
    ):
        return max(1.0, (tomorrow - local).total_seconds())
    if code.startswith("RequestLimitExceeded"):
        return 1.0
    return None


# ----------------------------------------------------------------------------------- the signature


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_canonical_request(
    headers: Mapping[str, str], payload: bytes, *, method: str = "POST", uri: str = "/", query: str = ""
) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders): the method, "/", the query ("" for a POST), each signed header
    as lowercase key:lowercase value and newline, sorted by key, the keys joined by ";", and the
    lowercase hex SHA-256 of the payload."""
    canonical = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
    signed = ";".join(sorted(canonical))
    lines = "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical))
    request = "\n".join([method.upper(), uri, query, lines, signed, _sha256_hex(payload)])
    return request, signed


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    timestamp: int,
    payload: bytes,
    headers: Mapping[str, str],
    method: str = "POST",
    query: str = "",
) -> str:
    """The Authorization header of TC3-HMAC-SHA256: `headers` are those signed (content-type and host
    at least, as sent). Date is the UTC date of `timestamp`; the key is derived as
    HMAC("TC3" + SecretKey, Date) → HMAC(·, service) → HMAC(·, "tc3_request")."""
    canonical, signed = tc3_canonical_request(headers, payload, method=method, query=query)
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    to_sign = "\n".join([ALGORITHM, str(timestamp), scope, _sha256_hex(canonical.encode("utf-8"))])
    key = _hmac256(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac256(key, service)
    key = _hmac256(key, "tc3_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={signed}, Signature={signature}"


# ----------------------------------------------------------------------------------- helpers


def redact(message: str, text: Text | None = None) -> str:
    """The provider's words without the number or the parameters."""
    secrets = [text.phone, *text.params.values()] if text is not None else []
    for value in secrets:
        if value:
            message = message.replace(value, "***")
    return re.sub(r"1\d{10}", "***", message)[:200]


def _host(url: URL) -> str:
    """The Host header as aiohttp sends it (the port only when it is not the scheme's)."""
    host = url.raw_host or ""
    return host if url.port is None or url.is_default_port() else f"{host}:{url.port}"


class TencentSms:
    """The Provider port over Tencent Cloud SMS 2021-01-11 (SendSms, PullSmsSendStatusByPhoneNumber,
    the delivery-status callback)."""

    name = "tencent"
    # One variable: 20 characters, a conservative choice. Tencent's template rules
    # (https://cloud.tencent.com/document/product/382/39023) allow a personally verified account 12
    # characters a variable and set no limit for an organisation-verified one (an earlier version of the
    # page; the current one says "see the console's template form"); TemplateParameterLengthLimit refuses
    # "单个模板变量字符数超过12个" for the former. A township registers a signature in its own name, which
    # takes an organisation-verified account; 12 would not even hold the 14-digit receipt, so 20.
    max_param_chars = 20
    # The whole text: "短信总长度（含签名和变量的实际取值）最长不超过500字" (the same template rules page;
    # 70 characters a part, 67 a part once long, https://cloud.tencent.com/document/product/382/18058).
    max_text_chars = 500

    def __init__(
        self,
        secret_id: str,
        secret_key: SecretStr,
        sdk_app_id: str,
        sign_name: str,
        *,
        region: str = "ap-guangzhou",
        endpoint: str = "https://sms.tencentcloudapi.com",
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.secret_id = secret_id
        self._secret = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.region = region
        url = URL(endpoint)
        self.endpoint = url.with_path("/") if url.path in ("", "/") else url
        self.host = _host(self.endpoint)
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    # ------------------------------------------------------------------------- the port

    async def send(self, text: Text) -> Answer:
        body = {
            "PhoneNumberSet": ["+86" + mainland(text.phone)],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": text.template_code,
            "TemplateParamSet": [str(value) for value in text.params.values()],
            "SessionContext": text.out_id,
        }
        try:
            status, response = await self._call("SendSms", body)
        except (Unsent, NoAnswer) as exc:
            return unanswered(log, "tencent", exc)
        error = response.get("Error")
        statuses = response.get("SendStatusSet")
        if isinstance(error, dict):
            code, message, serial = str(error.get("Code") or "Error"), str(error.get("Message") or ""), ""
        elif isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
            first = statuses[0]
            code, message = str(first.get("Code") or "NoCode"), str(first.get("Message") or "")
            serial = str(first.get("SerialNo") or "")
        else:
            code, message, serial = (f"HTTP {status}" if status != 200 else "NoCode"), "", ""
        outcome = outcome_of(code, status)
        if outcome is Outcome.ACCEPTED:  # "Ok" is taken, even without a SerialNo: never sent again
            log.info("sms tencent SendSms: Ok")
            return Answer(Outcome.ACCEPTED, provider_id=serial or None, code=code)
        log.info("sms tencent SendSms: %s (HTTP %s) -> %s", code, status, outcome.value)
        # A time-out between Tencent and the carrier may have let the text go.
        uncertain = code in ("InternalError.Timeout", "InternalError.SendAndRecvFail")
        wait = retry_after(code, datetime.now(UTC)) if outcome is Outcome.THROTTLED else None
        return Answer(
            outcome, code=code, message=redact(message, text), retry_after=wait, uncertain=uncertain
        )

    async def find(self, phone: str, out_id: str, sent_on: datetime) -> Found | None:
        """The pulled receipt whose SessionContext is `out_id`, among those of `phone` on the (Beijing)
        day of `sent_on` (see the module's note: None when Tencent does not echo SessionContext or the
        receipt is not in yet). Raises ConnectionError when Tencent cannot be asked."""
        for item in await self._pull(phone, sent_on):
            if str(item.get("SessionContext") or "") == out_id:
                return Found(provider_id=str(item.get("SerialNo") or "") or None, report=self._report(item))
        return None

    async def reports(self, phone: str, sent_on: datetime) -> list[Report]:
        """The receipts of the texts to `phone` that came in on the day of `sent_on`."""
        found = []
        for item in await self._pull(phone, sent_on):
            report = self._report(item)
            if report is not None:
                found.append(report)
        return found

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> tuple[list[Report], bytes]:
        """Tencent's delivery-status push: a JSON array of {user_receive_time, nationcode, mobile,
        report_status, errmsg, description, sid, ext?} (sid is the SerialNo; ext, when present, our
        SessionContext); acknowledged with {"result":0,"errmsg":"OK"}."""
        reports = []
        for item in pushed_receipts(body, "mobile"):
            delivered = str(item.get("report_status") or "").upper() == "SUCCESS"
            at = None
            received = item.get("user_receive_time")
            if isinstance(received, str) and received.strip():
                try:
                    at = datetime.strptime(received.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
                except ValueError:
                    at = None
            reports.append(
                Report(
                    phone=mainland(item["mobile"]),
                    delivered=delivered,
                    code=str(item.get("errmsg") or item.get("report_status") or "UNKNOWN"),
                    at=at,
                    out_id=str(item["ext"]) if item.get("ext") else None,
                    provider_id=str(item["sid"]) if item.get("sid") else None,
                    description=redact(str(item.get("description") or "")),
                )
            )
        log.info("sms tencent callback: %d receipt(s)", len(reports))
        return reports, json.dumps({"result": 0, "errmsg": "OK"}).encode("utf-8")

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    # ------------------------------------------------------------------------- the API

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    def _headers(self, action: str, payload: bytes, timestamp: int) -> dict[str, str]:
        signed = {"Content-Type": CONTENT_TYPE, "Host": self.host, "X-TC-Action": action}
        authorization = tc3_authorization(
            self.secret_id,
            self._secret.get_secret_value(),
            service=SERVICE,
            timestamp=timestamp,
            payload=payload,
            headers=signed,
        )
        return {
            **signed,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
            "Authorization": authorization,
        }

    async def _call(self, action: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one signed call; (HTTP status, the JSON answer's Response or {}). Raises Unsent when
        the request never reached Tencent, NoAnswer when it may have and no answer came."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = self._headers(action, payload, int(time.time()))
        session = await self._client()
        status, raw = await post(session, self.endpoint, data=payload, headers=headers, timeout=self.timeout)
        try:
            answer = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            answer = {}
        inner = answer.get("Response") if isinstance(answer, dict) else None
        return status, inner if isinstance(inner, dict) else {}

    async def _pull(self, phone: str, sent_on: datetime) -> list[dict[str, Any]]:
        """PullSmsSendStatusByPhoneNumber over the (Beijing) day of `sent_on`."""
        local = (sent_on if sent_on.tzinfo else sent_on.replace(tzinfo=UTC)).astimezone(BEIJING)
        begin = local.replace(hour=0, minute=0, second=0, microsecond=0)
        end = begin + timedelta(days=1)
        query = {
            "BeginTime": int(begin.timestamp()),
            "EndTime": int(end.timestamp()),
            "Offset": 0,
            "Limit": PULL_LIMIT,
            "PhoneNumber": "+86" + mainland(phone),
            "SmsSdkAppId": self.sdk_app_id,
        }
        try:
            status, response = await self._call("PullSmsSendStatusByPhoneNumber", query)
        except (Unsent, NoAnswer) as exc:
            log.warning("sms tencent PullSmsSendStatusByPhoneNumber: %s", exc.code)
            raise ConnectionError(f"tencent PullSmsSendStatusByPhoneNumber: {exc.code}") from None
        error = response.get("Error")
        if status != 200 or isinstance(error, dict):
            code = str(error.get("Code")) if isinstance(error, dict) else f"HTTP {status}"
            log.warning("sms tencent PullSmsSendStatusByPhoneNumber: %s", code)
            raise ConnectionError(f"tencent PullSmsSendStatusByPhoneNumber: {code}")
        items = response.get("PullSmsSendStatusSet") or []
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    @staticmethod
    def _report(item: Mapping[str, Any]) -> Report | None:
        status = str(item.get("ReportStatus") or "").upper()
        if status not in ("SUCCESS", "FAIL"):
            return None
        at = None
        received = item.get("UserReceiveTime")
        if isinstance(received, int | float) and received > 0:
            at = datetime.fromtimestamp(received, BEIJING)
        phone = str(item.get("SubscriberNumber") or item.get("PhoneNumber") or "")
        return Report(
            phone=mainland(phone),
            delivered=status == "SUCCESS",
            code=status,
            at=at,
            out_id=str(item["SessionContext"]) if item.get("SessionContext") else None,
            provider_id=str(item["SerialNo"]) if item.get("SerialNo") else None,
            description=redact(str(item.get("Description") or "")),
        )
