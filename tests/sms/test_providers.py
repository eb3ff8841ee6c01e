"""The SMS adapters (Alibaba Cloud, Tencent Cloud) against the local emulator (smsapi), and their
signers against the providers' documented worked examples."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.sms import aliyun, tencent
from bot.sms.aliyun import AliyunSms, aliyun_signature, percent_encode, string_to_sign
from bot.sms.port import Answer, Outcome, Provider, Report, Text
from bot.sms.tencent import TencentSms, tc3_authorization, tc3_canonical_request
from smsapi import SmsEmulator
from smsapi.emulator import (
    ALIYUN_KEY_ID,
    ALIYUN_KEY_SECRET,
    TENCENT_SDK_APP_ID,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
)

BEIJING = ZoneInfo("Asia/Shanghai")
PHONE = "13800138000"
OTHER_PHONE = "13900139000"
RECEIPT = "20261123000042"
SIGN = "云岭乡人民政府"
ALIYUN_CODE = "SMS_480000001"
TENCENT_CODE = "2000001"
TEMPLATES = {
    ALIYUN_CODE: "您的申报（回执${receipt}）${state}，详情请凭回执号查询。",
    TENCENT_CODE: "您的申报（回执{1}）{2}，详情请凭回执号查询。",
}
CLIENT_TIMEOUT = 0.3  # seconds: the emulator's "timeout" fault holds the answer longer
HANG = 0.8


@pytest.fixture
async def emu() -> AsyncIterator[SmsEmulator]:
    async with SmsEmulator(templates=TEMPLATES, sign_names={SIGN}) as emulator:
        emulator.timeout_hang = HANG
        yield emulator


def make(name: str, emu: SmsEmulator, *, key_id: str | None = None, secret: str | None = None) -> Provider:
    if name == "aliyun":
        return AliyunSms(
            key_id or ALIYUN_KEY_ID,
            SecretStr(secret or ALIYUN_KEY_SECRET),
            SIGN,
            endpoint=emu.aliyun_url,
            timeout=CLIENT_TIMEOUT,
        )
    return TencentSms(
        key_id or TENCENT_SECRET_ID,
        SecretStr(secret or TENCENT_SECRET_KEY),
        TENCENT_SDK_APP_ID,
        SIGN,
        endpoint=emu.tencent_url,
        timeout=CLIENT_TIMEOUT,
    )


@pytest.fixture(params=["aliyun", "tencent"])
async def provider(request: pytest.FixtureRequest, emu: SmsEmulator) -> AsyncIterator[Provider]:
    adapter = make(request.param, emu)
    yield adapter
    await adapter.close()


def text_for(provider: Provider, phone: str = PHONE, out_id: str = "sms-1", state: str = "已受理") -> Text:
    code = ALIYUN_CODE if provider.name == "aliyun" else TENCENT_CODE
    return Text(phone, code, {"receipt": RECEIPT, "state": state}, out_id)


def now() -> datetime:
    return datetime.now(BEIJING)


# ------------------------------------------------------------------------------------ the signers


# Alibaba Cloud's SMS signature page (https://help.aliyun.com/document_detail/101343.html): SendSms
# signed with AccessKeySecret "testSecret", GET.
ALIYUN_SMS_EXAMPLE = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
# The RPC signature mechanism's example (https://help.aliyun.com/document_detail/28839.html):
# DescribeRegions with AccessKeySecret "testsecret", GET.
ALIYUN_RPC_EXAMPLE = {
    "Timestamp": "2016-02-23T12:46:24Z",
    "Format": "XML",
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "Version": "2014-05-26",
    "SignatureVersion": "1.0",
}


def test_aliyun_signature_matches_the_documented_sendsms_example() -> None:
    assert string_to_sign(ALIYUN_SMS_EXAMPLE, "GET") == (
        "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"
        "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587"
        "%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8"
        "%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85"
        "-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B"
        "%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z"
        "%26Version%3D2017-05-25"
    )
    assert aliyun_signature(ALIYUN_SMS_EXAMPLE, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # Signature itself is never signed.
    with_signature = {**ALIYUN_SMS_EXAMPLE, "Signature": "old"}
    assert aliyun_signature(with_signature, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_signature_matches_the_documented_rpc_example() -> None:
    assert aliyun_signature(ALIYUN_RPC_EXAMPLE, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
    # The method is part of what is signed: the adapter POSTs.
    assert aliyun_signature(ALIYUN_RPC_EXAMPLE, "testsecret", "POST") != "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_percent_encoding_follows_pop_rules() -> None:
    assert percent_encode("a b*c~d-_.") == "a%20b%2Ac~d-_."
    assert percent_encode("/=&+:") == "%2F%3D%26%2B%3A"
    assert percent_encode("乡") == "%E4%B9%A1"


def test_tc3_matches_the_documented_example() -> None:
    """Tencent's "Signature v3" worked example: a CVM DescribeInstances call, SecretKey
    Gu5t9xGARNpq86cd98joQYCN3EXAMPLE, X-TC-Timestamp 1551113065."""
    payload = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
    assert hashlib.sha256(payload).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    canonical, signed = tc3_canonical_request(headers, payload)
    assert signed == "content-type;host"
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        service="cvm",
        timestamp=1551113065,
        payload=payload,
        headers=headers,
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


async def test_the_emulator_refuses_a_tampered_aliyun_request(emu: SmsEmulator) -> None:
    params = {
        "AccessKeyId": ALIYUN_KEY_ID,
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
        "PhoneNumbers": PHONE,
        "SignName": SIGN,
        "TemplateCode": ALIYUN_CODE,
        "TemplateParam": json.dumps({"receipt": RECEIPT, "state": "已受理"}, ensure_ascii=False),
        "OutId": "t-1",
    }
    async with aiohttp.ClientSession() as session:
        tampered = {**params, "SignatureNonce": "n-1"}
        tampered["Signature"] = aliyun_signature(tampered, ALIYUN_KEY_SECRET)
        tampered["PhoneNumbers"] = OTHER_PHONE
        async with session.post(emu.aliyun_url, data=tampered) as response:
            assert response.status == 400
            assert (await response.json())["Code"] == "SignatureDoesNotMatch"
        honest = {**params, "SignatureNonce": "n-2"}
        honest["Signature"] = aliyun_signature(honest, ALIYUN_KEY_SECRET)
        async with session.post(emu.aliyun_url, data=honest) as response:
            assert (await response.json())["Code"] == "OK"
        async with session.post(emu.aliyun_url, data=honest) as response:  # the same nonce again
            assert (await response.json())["Code"] == "SignatureNonceUsed"
    assert [t.phone for t in emu.texts()] == [PHONE]


async def test_the_emulator_refuses_a_tampered_tencent_request(emu: SmsEmulator) -> None:
    def body(phone: str) -> bytes:
        return json.dumps(
            {
                "PhoneNumberSet": ["+86" + phone],
                "SmsSdkAppId": TENCENT_SDK_APP_ID,
                "SignName": SIGN,
                "TemplateId": TENCENT_CODE,
                "TemplateParamSet": [RECEIPT, "已受理"],
                "SessionContext": "t-1",
            }
        ).encode()

    host = f"{emu.host}:{emu.port}"
    stamp = int(time.time())
    signed = {"Content-Type": "application/json; charset=utf-8", "Host": host, "X-TC-Action": "SendSms"}
    headers = {
        **signed,
        "X-TC-Version": "2021-01-11",
        "X-TC-Timestamp": str(stamp),
        "X-TC-Region": "ap-guangzhou",
        "Authorization": tc3_authorization(
            TENCENT_SECRET_ID,
            TENCENT_SECRET_KEY,
            service="sms",
            timestamp=stamp,
            payload=body(PHONE),
            headers=signed,
        ),
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(emu.tencent_url, data=body(OTHER_PHONE), headers=headers) as response:
            answer = await response.json()
            assert answer["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
        async with session.post(emu.tencent_url, data=body(PHONE), headers=headers) as response:
            answer = await response.json()
            assert answer["Response"]["SendStatusSet"][0]["Code"] == "Ok"
    assert [t.phone for t in emu.texts()] == [PHONE]


# ------------------------------------------------------------------------------------ sending


async def test_a_text_is_accepted_with_the_providers_id(provider: Provider, emu: SmsEmulator) -> None:
    answer = await provider.send(text_for(provider))

    assert answer.outcome is Outcome.ACCEPTED and answer.provider_id
    (received,) = emu.texts(PHONE)
    assert received.provider == provider.name
    assert received.provider_id == answer.provider_id
    assert received.out_id == "sms-1"
    assert received.sign_name == SIGN
    if provider.name == "aliyun":
        assert received.template_code == ALIYUN_CODE
        assert received.params == {"receipt": RECEIPT, "state": "已受理"}
    else:
        assert received.template_code == TENCENT_CODE
        assert received.params == {"1": RECEIPT, "2": "已受理"}  # in the template's order
    assert emu.screen(PHONE) == [f"【{SIGN}】您的申报（回执{RECEIPT}）已受理，详情请凭回执号查询。"]


@pytest.mark.parametrize(
    ("kind", "outcome", "codes"),
    [
        (
            "throttle",
            Outcome.THROTTLED,
            {"isv.BUSINESS_LIMIT_CONTROL", "LimitExceeded.PhoneNumberThirtySecondLimit"},
        ),
        ("server_error", Outcome.RETRY, {"InternalError"}),
        (
            "permanent",
            Outcome.FAILED,
            {"isv.MOBILE_NUMBER_ILLEGAL", "InvalidParameterValue.IncorrectPhoneNumber"},
        ),
    ],
)
async def test_each_fault_has_its_outcome(
    provider: Provider, emu: SmsEmulator, kind: str, outcome: Outcome, codes: set[str]
) -> None:
    emu.fail_next(1, kind)

    answer = await provider.send(text_for(provider))

    assert answer.outcome is outcome
    assert answer.code in codes
    assert not answer.uncertain
    assert emu.texts(PHONE) == []
    if outcome is Outcome.THROTTLED:
        assert answer.retry_after is not None and 0 < answer.retry_after <= 60
    # The fault is spent: the next attempt goes through.
    assert (await provider.send(text_for(provider))).outcome is Outcome.ACCEPTED


async def test_a_time_out_after_acceptance_is_found_and_not_sent_again(
    provider: Provider, emu: SmsEmulator
) -> None:
    emu.auto_deliver = True  # Tencent pulls a text only once its receipt is in
    emu.fail_next(1, "timeout")
    started = time.monotonic()

    answer = await provider.send(text_for(provider, out_id="sms-7"))

    assert time.monotonic() - started < HANG
    assert answer.outcome is Outcome.RETRY and answer.uncertain
    (held,) = emu.texts(PHONE)
    assert held.fault == "timeout"
    found = await provider.find(PHONE, "sms-7", now())
    assert found is not None
    if provider.name == "tencent":
        assert found.provider_id == held.provider_id
    assert found.report is not None and found.report.delivered
    assert await provider.find(PHONE, "sms-8", now()) is None
    assert await provider.find(OTHER_PHONE, "sms-7", now()) is None
    assert len(emu.texts(PHONE)) == 1


async def test_aliyun_finds_a_text_that_waits_for_its_receipt(emu: SmsEmulator) -> None:
    adapter = make("aliyun", emu)
    try:
        assert (await adapter.send(text_for(adapter, out_id="sms-9"))).outcome is Outcome.ACCEPTED
        found = await adapter.find(PHONE, "sms-9", now())
        assert found is not None and found.report is None  # SendStatus 1: waiting for the receipt
    finally:
        await adapter.close()


async def test_tencent_cannot_find_a_text_without_the_session_context_echo(emu: SmsEmulator) -> None:
    """SessionContext comes back in a pulled receipt only where Tencent enabled it for the account."""
    emu.auto_deliver = True
    emu.tencent_echo_session_context = False
    adapter = make("tencent", emu)
    try:
        assert (await adapter.send(text_for(adapter, out_id="sms-3"))).outcome is Outcome.ACCEPTED
        assert await adapter.find(PHONE, "sms-3", now()) is None
        (report,) = await adapter.reports(PHONE, now())  # the receipt is there, by its SerialNo only
        assert report.out_id is None and report.provider_id == emu.texts(PHONE)[0].provider_id
    finally:
        await adapter.close()


async def test_a_provider_out_of_reach_is_retried_as_unsent(emu: SmsEmulator) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    adapters: list[Provider] = [
        AliyunSms(
            ALIYUN_KEY_ID,
            SecretStr(ALIYUN_KEY_SECRET),
            SIGN,
            endpoint=f"http://127.0.0.1:{closed}/",
            timeout=CLIENT_TIMEOUT,
        ),
        TencentSms(
            TENCENT_SECRET_ID,
            SecretStr(TENCENT_SECRET_KEY),
            TENCENT_SDK_APP_ID,
            SIGN,
            endpoint=f"http://127.0.0.1:{closed}/",
            timeout=CLIENT_TIMEOUT,
        ),
    ]
    for adapter in adapters:
        try:
            answer = await adapter.send(text_for(adapter))
            assert answer.outcome is Outcome.RETRY and not answer.uncertain
            with pytest.raises(ConnectionError):  # "could not ask" is never "not found"
                await adapter.find(PHONE, "sms-1", now())
        finally:
            await adapter.close()


async def test_the_per_number_limits_throttle(provider: Provider, emu: SmsEmulator) -> None:
    assert (await provider.send(text_for(provider, out_id="a"))).outcome is Outcome.ACCEPTED

    again = await provider.send(text_for(provider, out_id="b"))

    assert again.outcome is Outcome.THROTTLED
    assert again.retry_after is not None
    if provider.name == "tencent":
        assert again.code == "LimitExceeded.PhoneNumberThirtySecondLimit" and again.retry_after == 30
    else:
        assert again.code == "isv.BUSINESS_LIMIT_CONTROL" and 0 < again.retry_after <= 60
    assert (
        await provider.send(text_for(provider, phone=OTHER_PHONE, out_id="c"))
    ).outcome is Outcome.ACCEPTED
    emu.enforce_limits = False
    assert (await provider.send(text_for(provider, out_id="d"))).outcome is Outcome.ACCEPTED
    assert [t.out_id for t in emu.texts(PHONE)] == ["a", "d"]


async def test_wrong_keys_are_refused_for_good(provider: Provider, emu: SmsEmulator) -> None:
    wrong_secret = make(provider.name, emu, secret="not-the-secret")
    unknown_key = make(
        provider.name, emu, key_id="LTAI-unknown" if provider.name == "aliyun" else "AKID-unknown"
    )
    try:
        refused = await wrong_secret.send(text_for(provider))
        unknown = await unknown_key.send(text_for(provider))
    finally:
        await wrong_secret.close()
        await unknown_key.close()

    assert refused.outcome is Outcome.FAILED
    assert refused.code in {"SignatureDoesNotMatch", "AuthFailure.SignatureFailure"}
    assert PHONE not in refused.message and RECEIPT not in refused.message  # Aliyun echoes its string to sign
    assert unknown.outcome is Outcome.FAILED
    assert unknown.code in {"InvalidAccessKeyId.NotFound", "AuthFailure.SecretIdNotFound"}
    assert emu.texts() == []


@pytest.mark.parametrize("problem", ["unknown template", "parameter too long", "a URL in a parameter"])
async def test_what_the_provider_refuses_in_a_template_fails(
    provider: Provider, emu: SmsEmulator, problem: str
) -> None:
    text = text_for(provider)
    if problem == "unknown template":
        text = Text(PHONE, "SMS_999" if provider.name == "aliyun" else "999", text.params, "x")
    elif problem == "parameter too long":
        emu.max_param_chars["tencent"] = 12  # a personally verified Tencent account
        text = Text(PHONE, text.template_code, {"receipt": RECEIPT + "0" * 30, "state": "已受理"}, "x")
    else:
        text = Text(PHONE, text.template_code, {"receipt": RECEIPT, "state": "https://x.cn/s"}, "x")

    answer = await provider.send(text)

    assert answer.outcome is Outcome.FAILED, answer
    assert emu.texts() == []


# ------------------------------------------------------------------------------------ receipts


async def test_receipts_by_query(provider: Provider, emu: SmsEmulator) -> None:
    emu.enforce_limits = False
    first = await provider.send(text_for(provider, out_id="r-1"))
    second = await provider.send(text_for(provider, out_id="r-2", state="已签收"))
    assert first.outcome is second.outcome is Outcome.ACCEPTED
    delivered, lost = emu.texts(PHONE)
    await emu.deliver(delivered)
    await emu.deliver(lost, delivered=False)

    reports = sorted(await provider.reports(PHONE, now()), key=lambda r: r.delivered)

    assert [r.delivered for r in reports] == [False, True]
    assert all(r.phone == PHONE and r.at is not None and r.at.tzinfo is not None for r in reports)
    assert [r.out_id for r in reports] == ["r-2", "r-1"]
    if provider.name == "tencent":
        assert [r.provider_id for r in reports] == [second.provider_id, first.provider_id]
        assert [r.code for r in reports] == ["FAIL", "SUCCESS"]
    else:
        assert [r.code for r in reports] == ["UNDELIV", "DELIVERED"]
    assert await provider.reports(OTHER_PHONE, now()) == []


async def test_receipts_by_callback(provider: Provider, emu: SmsEmulator) -> None:
    received: list[Report] = []

    async def callback(request: web.Request) -> web.Response:
        reports, answer = provider.parse_callback(await request.read(), dict(request.headers))
        received.extend(reports)
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/sms/receipts/token", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        emu.callback_urls[provider.name] = f"http://127.0.0.1:{runner.addresses[0][1]}/sms/receipts/token"
        emu.auto_deliver = True
        answer = await provider.send(text_for(provider, out_id="cb-1"))
        await emu.settle()
        (lost,) = [t for t in emu.texts() if t.out_id == "cb-1"]
        emu.auto_deliver = None
        emu.enforce_limits = False
        await provider.send(text_for(provider, out_id="cb-2"))
        await emu.deliver(emu.texts(PHONE)[-1], delivered=False)
    finally:
        await runner.cleanup()

    assert [push.acknowledged for push in emu.pushes] == [True, True]
    first, second = received
    assert (first.phone, first.delivered, second.delivered) == (PHONE, True, False)
    assert first.at is not None and first.at.tzinfo is not None
    assert first.provider_id == answer.provider_id == lost.provider_id
    assert (first.out_id, second.out_id) == ("cb-1", "cb-2")


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[1]", b'[{"success": true}]', b"\xff"])
def test_a_callback_that_is_not_one_is_refused(body: bytes) -> None:
    adapters: list[Any] = [
        AliyunSms("id", SecretStr("s"), SIGN),
        TencentSms("id", SecretStr("s"), TENCENT_SDK_APP_ID, SIGN),
    ]
    for adapter in adapters:
        with pytest.raises(ValueError):
            adapter.parse_callback(body, {})


def test_the_callbacks_documented_shapes_and_answers() -> None:
    ali_reports, ali_answer = AliyunSms("id", SecretStr("s"), SIGN).parse_callback(
        json.dumps(
            [
                {
                    "phone_number": PHONE,
                    "send_time": "2017-01-01 00:00:00",
                    "report_time": "2017-01-01 00:00:05",
                    "success": True,
                    "err_code": "DELIVERED",
                    "err_msg": "用户接收成功",
                    "sms_size": "1",
                    "biz_id": "12345^0",
                    "out_id": "67890",
                }
            ]
        ).encode(),
        {},
    )
    assert json.loads(ali_answer) == {"code": 0, "msg": "成功"}
    assert ali_reports == [
        Report(
            PHONE,
            True,
            "DELIVERED",
            datetime(2017, 1, 1, 0, 0, 5, tzinfo=BEIJING),
            out_id="67890",
            provider_id="12345^0",
            description="用户接收成功",
        )
    ]
    tc_reports, tc_answer = TencentSms("id", SecretStr("s"), TENCENT_SDK_APP_ID, SIGN).parse_callback(
        json.dumps(
            [
                {
                    "user_receive_time": "2015-10-17 08:03:04",
                    "nationcode": "86",
                    "mobile": PHONE,
                    "report_status": "FAIL",
                    "errmsg": "UNDELIV",
                    "description": "用户短信接收失败",
                    "sid": "2433:1045",
                }
            ]
        ).encode(),
        {},
    )
    assert json.loads(tc_answer) == {"result": 0, "errmsg": "OK"}
    assert tc_reports == [
        Report(
            PHONE,
            False,
            "UNDELIV",
            datetime(2015, 10, 17, 8, 3, 4, tzinfo=BEIJING),
            out_id=None,
            provider_id="2433:1045",
            description="用户短信接收失败",
        )
    ]


# ------------------------------------------------------------------------------------ the codes


def test_the_code_tables() -> None:
    assert aliyun.outcome_of("OK") is Outcome.ACCEPTED
    for code in ("isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"):
        assert aliyun.outcome_of(code, 400) is Outcome.THROTTLED
    for code in ("isp.SYSTEM_ERROR", "ServiceUnavailable", "isp.SOMETHING_NEW"):
        assert aliyun.outcome_of(code, 503) is Outcome.RETRY
    for code in (
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "InvalidAccessKeyId.NotFound",
        "SignatureDoesNotMatch",
        "isp.RAM_PERMISSION_DENY",
        "isv.SOMETHING_NEW",
    ):
        assert aliyun.outcome_of(code, 200) is Outcome.FAILED, code
    assert aliyun.outcome_of("", 502) is Outcome.RETRY

    assert tencent.outcome_of("Ok") is Outcome.ACCEPTED
    for code in (
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "RequestLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
    ):
        assert tencent.outcome_of(code) is Outcome.THROTTLED, code
    for code in ("InternalError", "InternalError.Timeout", "InternalError.Whatever"):
        assert tencent.outcome_of(code) is Outcome.RETRY
    for code in (
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "AuthFailure.SignatureFailure",
        "AuthFailure.SecretIdNotFound",
        "LimitExceeded.PhoneNumberCountLimit",
    ):
        assert tencent.outcome_of(code) is Outcome.FAILED, code


def test_how_long_a_throttle_waits() -> None:
    at = datetime(2026, 11, 23, 22, 30, 15, tzinfo=BEIJING)
    assert aliyun.retry_after("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", at) == 45
    assert aliyun.retry_after("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5", at) == 1785
    assert aliyun.retry_after("isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", at) == 86400
    assert aliyun.retry_after("isv.DAY_LIMIT_CONTROL", "", at) == 5385  # Beijing midnight
    assert aliyun.retry_after("isv.MOBILE_NUMBER_ILLEGAL", "", at) is None
    assert tencent.retry_after("LimitExceeded.PhoneNumberThirtySecondLimit", at) == 30
    assert tencent.retry_after("LimitExceeded.PhoneNumberOneHourLimit", at) == 3600
    assert tencent.retry_after("LimitExceeded.PhoneNumberDailyLimit", at.astimezone(UTC)) == 5385
    assert tencent.retry_after("InternalError", at) is None


# ------------------------------------------------------------------------------------ the logs


async def test_nothing_logged_holds_the_number_or_a_parameter(
    provider: Provider, emu: SmsEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emu.auto_deliver = True
    answers: list[Answer] = [await provider.send(text_for(provider, out_id="log-1"))]
    emu.enforce_limits = False
    for kind in ("throttle", "server_error", "permanent", "timeout"):
        emu.fail_next(1, kind)
        answers.append(await provider.send(text_for(provider, out_id=f"log-{kind}")))
    wrong = make(provider.name, emu, secret="wrong")
    try:
        answers.append(await wrong.send(text_for(provider)))
    finally:
        await wrong.close()
    await provider.find(PHONE, "log-1", now())
    await provider.reports(PHONE, now())
    body = json.dumps([{"phone_number": PHONE, "mobile": PHONE, "success": True, "report_status": "SUCCESS"}])
    provider.parse_callback(body.encode(), {})

    assert caplog.records  # the codes were logged
    for secret in (PHONE, PHONE[-8:], RECEIPT, "已受理"):
        assert secret not in caplog.text
        assert all(secret not in answer.message for answer in answers)
