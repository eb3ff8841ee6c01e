"""Templates as data (issue 14, item 2): the template file checked at start, texts within the limits."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.sms.templates import RenderError, TemplateError, Templates, load_templates
from domain.messages import Outgoing, day
from domain.sms import CADRE_KINDS, Param, SmsKind, SmsText, sms_of

ROOT = Path(__file__).resolve().parents[2]
RECEIPT = "20261209000001"
SIGN = "某某镇人民政府"


@dataclass
class FakeProvider:
    """The limits a provider adapter gives (bot/sms/port.Provider), without its network."""

    name: str = "aliyun"
    max_param_chars: int = 35
    max_text_chars: int = 500


# A complete Aliyun file: every kind, each with the parameters its messages carry.
TABLES: dict[str, dict[str, Any]] = {
    "received": {"params": ["receipt", "state"], "text": "申报已受理，受理号${receipt}，${state}。"},
    "acknowledged": {"params": ["receipt", "state"], "text": "申报（受理号${receipt}）${state}。"},
    "visited": {"params": ["receipt", "date"], "text": "申报（受理号${receipt}）已于${date}入户核实。"},
    "verdict": {"params": ["receipt", "state"], "text": "申报（受理号${receipt}）认定结果：${state}。"},
    "refused": {"params": ["receipt"], "text": "申报（受理号${receipt}）不纳入，原因请查看状态页。"},
    "objection_result": {"params": ["receipt", "state"], "text": "申报（受理号${receipt}）异议：${state}。"},
    "new_case": {"params": ["village", "receipt"], "text": "${village}有新申报（受理号${receipt}）。"},
    "reminder": {"params": ["village", "receipt", "date"], "text": "${village}申报${receipt}期限${date}。"},
}


def toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def write(
    tmp_path: Path,
    tables: dict[str, dict[str, Any]],
    provider: str = "aliyun",
    name: str = "sms-templates.toml",
) -> Path:
    lines = [f'provider = "{provider}"']
    for number, (kind, table) in enumerate(tables.items(), start=1):
        lines.append(f"\n[{kind}]")
        code = f"SMS_48000000{number}" if provider == "aliyun" else f"123456{number}"
        lines.extend(f"{key} = {toml(value)}" for key, value in {"code": code, **table}.items())
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def load(path: Path, provider: FakeProvider | None = None, *, cadres: bool = False, **kw: Any) -> Templates:
    return load_templates(path, provider or FakeProvider(), cadres=cadres, sign_name=SIGN, **kw)


def refusal(path: Path, provider: FakeProvider | None = None, *, cadres: bool = False, **kw: Any) -> str:
    with pytest.raises(TemplateError) as caught:
        load(path, provider, cadres=cadres, **kw)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"SMS templates file {path}: ")
    return message


def changed(kind: str, **table: Any) -> dict[str, dict[str, Any]]:
    return {**TABLES, kind: {**TABLES[kind], **table}}


def text_of(template: str, **params: Any) -> SmsText:
    found = sms_of(Outgoing(template, {"receipt": RECEIPT, **params}))
    assert found is not None
    return SmsText.from_json(found.to_json())  # as the outbox keeps it


# The example files


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_both_example_files_load_with_every_kind(provider: str) -> None:
    path = ROOT / f"sms-templates.{provider}.example.toml"
    templates = load(path, FakeProvider(provider, max_param_chars=20, max_text_chars=500))
    # Every kind the service sends; cadres without a chat get no texts (domain/sms.py).
    assert set(templates.by_kind) == set(SmsKind) - CADRE_KINDS
    assert templates.provider == provider and not templates.needs_link
    # Without the signature setting, the longest the providers register is counted.
    assert load_templates(path, FakeProvider(provider), cadres=False).by_kind


def test_example_texts_read_as_the_phone_shows_them() -> None:
    aliyun = load(ROOT / "sms-templates.aliyun.example.toml")
    tencent = load(ROOT / "sms-templates.tencent.example.toml", FakeProvider("tencent"))
    visited = text_of("farmer.visited", date=day("2026-12-09"))
    shown = []
    for templates in (aliyun, tencent):
        code, values = templates.render(visited, public_url=None)
        shown.append(templates.shown(code, values, SIGN))
    assert shown[0] == shown[1]
    assert shown[0].startswith(f"【{SIGN}】村干部已于12月9日对您的防返贫监测申报（受理号{RECEIPT}）")
    assert "已入户核实，待认定" in shown[0] and "https://example.gov.cn/status" in shown[0]
    assert "${" not in shown[0] and "{1}" not in shown[1]


# Checked at start


def test_a_file_missing_two_kinds_is_refused_in_one_line_naming_both(tmp_path: Path) -> None:
    tables = {k: v for k, v in TABLES.items() if k not in ("acknowledged", "visited")}
    message = refusal(write(tmp_path, tables))
    assert "no template for acknowledged, visited (" in message


def test_a_cadre_kind_is_needed_only_when_cadres_get_texts(tmp_path: Path) -> None:
    path = write(tmp_path, {k: v for k, v in TABLES.items() if k != "new_case"})
    templates = load(path, cadres=False)
    assert SmsKind.NEW_CASE not in templates.by_kind and SmsKind.REMINDER in templates.by_kind
    assert "no template for new_case (" in refusal(path, cadres=True)
    only_household = write(tmp_path, {k: v for k, v in TABLES.items() if SmsKind(k) not in CADRE_KINDS})
    assert set(load(only_household, cadres=False).by_kind) == set(SmsKind) - CADRE_KINDS
    assert "no template for reminder, new_case (" in refusal(only_household, cadres=True)


def test_an_unknown_kind_or_parameter_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {**TABLES, "recieved": TABLES["received"]})
    assert "unknown message kind [recieved]" in refusal(path)
    path = write(tmp_path, changed("received", params=["receipt", "amount"]))
    assert "[received] unknown parameter 'amount'" in refusal(path)


def test_a_parameter_the_messages_of_a_kind_do_not_carry_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, changed("received", params=["receipt", "date"], text="受理号${receipt}，${date}"))
    assert "[received] takes date, which a received message does not carry" in refusal(path)
    path = write(tmp_path, changed("new_case", params=["village", "state"], text="${village}：${state}"))
    assert "[new_case] takes state" in refusal(path)
    # What each kind may take, worked out from the domain's messages.
    path = write(
        tmp_path,
        changed(
            "reminder",
            params=["village", "receipt", "date", "link"],
            text="${village}${receipt}${date}${link}",
        ),
    )
    assert load(path, FakeProvider(max_param_chars=60), public_url="https://x.cn").needs_link


def test_placeholders_must_match_the_parameters(tmp_path: Path) -> None:
    path = write(tmp_path, changed("received", text="申报已受理，受理号${reciept}，${state}。"))
    message = refusal(path)
    assert "[received] text has ${reciept}, ${state} but params give ${receipt}, ${state}" in message
    path = write(tmp_path, changed("received", text="申报已受理，受理号${receipt}。"))
    assert "[received] text has ${receipt} but params give ${receipt}, ${state}" in refusal(path)
    path = write(tmp_path, changed("received", text="申报已受理，受理号{1}，{2}。"))
    assert "not a aliyun placeholder" in refusal(path)
    # Tencent's by position: {1}, {2} for two parameters; its names are not Aliyun's.
    tencent = FakeProvider("tencent")
    tables = {k: {**v, "text": v["text"].replace("${", "{")} for k, v in TABLES.items()}
    for table in tables.values():
        for index, param in enumerate(table["params"], start=1):
            table["text"] = table["text"].replace("{" + param + "}", "{" + str(index) + "}")
    assert load(write(tmp_path, tables, "tencent"), tencent).provider == "tencent"
    tables["received"] = {**tables["received"], "text": "受理号{1}，{3}。"}
    assert "[received] text has {1}, {3} but params give {1}, {2}" in refusal(
        write(tmp_path, tables, "tencent"), tencent
    )
    tables["received"] = {**tables["received"], "text": "受理号${receipt}，${state}。"}
    assert "not a tencent placeholder" in refusal(write(tmp_path, tables, "tencent"), tencent)


def test_aliyun_variables_may_be_named_otherwise(tmp_path: Path) -> None:
    path = write(tmp_path, changed("received", names={"receipt": "no"}, text="受理号${no}，${state}。"))
    code, values = load(path).render(text_of("intake.submitted"), public_url=None)
    assert code == "SMS_480000001" and values == {"no": RECEIPT, "state": "已提交，等待村干部签收"}
    path = write(tmp_path, changed("received", names={"date": "no"}, text="受理号${receipt}，${state}。"))
    assert "[received] names renames date, which params does not list" in refusal(path)


def test_the_other_providers_file_is_refused(tmp_path: Path) -> None:
    message = refusal(write(tmp_path, TABLES), FakeProvider("tencent"))
    assert 'provider = "aliyun", but the configured provider is tencent' in message
    path = tmp_path / "codes.toml"
    path.write_text(
        write(tmp_path, TABLES).read_text("utf-8").replace('"SMS_480000001"', '"1234567"'), "utf-8"
    )
    assert "[received] code '1234567' is not a aliyun template code" in refusal(path)


def test_a_text_over_the_providers_length_is_refused(tmp_path: Path) -> None:
    # received: fixed text + a 14-digit receipt + the longest state (11) + 【signature】
    text = "申报已受理，受理号${receipt}，${state}。" + "请" * 60
    path = write(tmp_path, changed("received", text=text))
    fixed = len(text) - len("${receipt}") - len("${state}")
    longest = fixed + 14 + len("已提交，等待村干部签收") + len(f"【{SIGN}】")
    assert load(path, FakeProvider(max_text_chars=longest)).by_kind
    message = refusal(path, FakeProvider(max_text_chars=longest - 1))
    assert (
        f"[received] text can reach {longest} characters with the signature, over aliyun's {longest - 1}"
        in message
    )
    # A village is counted at the provider's per-parameter limit.
    path = write(tmp_path, changed("new_case", text="${village}有新申报（受理号${receipt}）。" + "请" * 400))
    assert "[new_case] text can reach" in refusal(path, FakeProvider(max_param_chars=100, max_text_chars=500))


def test_a_receipt_or_link_longer_than_a_parameter_may_be_is_refused_at_start(tmp_path: Path) -> None:
    assert "the receipt is 14 characters; aliyun takes at most 12" in refusal(
        write(tmp_path, TABLES), FakeProvider(max_param_chars=12)
    )
    path = write(
        tmp_path, changed("refused", params=["receipt", "link"], text="受理号${receipt}，详见${link}")
    )
    assert load(path, FakeProvider(max_param_chars=60), public_url="https://gov.cn").needs_link
    message = refusal(
        path, FakeProvider(max_param_chars=60), public_url="https://fanghui.example-township.gov.cn/portal"
    )
    assert (
        "[refused] the link https://fanghui.example-township.gov.cn/portal/status?r=… is 70 characters"
        in message
    )


# Rendering one text


def test_render_gives_chinese_state_words_and_a_short_date() -> None:
    templates = load(ROOT / "sms-templates.aliyun.example.toml")
    assert templates.render(text_of("farmer.acknowledged", name="张三"), public_url=None) == (
        "SMS_480000002",
        {"receipt": RECEIPT, "state": "村干部已签收，待入户核实"},
    )
    assert templates.render(text_of("farmer.upheld"), public_url=None)[1]["state"] == "复核维持原结论"
    assert templates.render(text_of("farmer.reopened"), public_url=None)[1]["state"] == "复核后重新办理"
    assert templates.render(text_of("farmer.entered"), public_url=None)[1]["state"] == "已纳入监测"
    visited = text_of("farmer.visited", date=day("2026-12-09"))
    assert templates.render(visited, public_url=None)[1]["date"] == "12月9日"
    # Tencent's parameters go by position, in the file's order.
    tencent = load(ROOT / "sms-templates.tencent.example.toml", FakeProvider("tencent"))
    visited = text_of("farmer.visited", date=day("2026-01-05"))
    assert tencent.render(visited, public_url=None) == (
        "1234563",
        {"1": "1月5日", "2": RECEIPT, "3": "已入户核实，待认定"},
    )


def test_render_clips_the_village_to_the_providers_parameter_limit(tmp_path: Path) -> None:
    path = write(
        tmp_path, changed("new_case", names={"village": "cun"}, text="${cun}有新申报（受理号${receipt}）。")
    )
    templates = load(path, FakeProvider(max_param_chars=20))
    long_name = "云岭县幸福镇" + "上" * 30 + "村"
    _, values = templates.render(text_of("case.new", village=long_name), public_url=None)
    assert values["cun"] == long_name[:19] + "…" and len(values["cun"]) == 20
    _, values = templates.render(text_of("case.new", village="幸福村"), public_url=None)
    assert values["cun"] == "幸福村"


def test_no_value_ever_exceeds_the_per_parameter_limit(tmp_path: Path) -> None:
    plain = write(tmp_path, TABLES)
    link = changed("refused", params=["receipt", "state", "link"], text="${receipt}${state}${link}")
    with_link = write(tmp_path, link, name="link.toml")
    rng = random.Random(14)
    alphabet = "幸福村镇上下东西南北 ab-·（）"
    messages = [
        ("intake.submitted", {}),
        ("farmer.acknowledged", {}),
        ("farmer.visited", {"date": day("2026-09-30")}),
        ("farmer.proposed", {}),
        ("farmer.verdict_not_eligible", {}),
        ("farmer.reopened", {}),
        ("case.new", {}),
        ("deadline.reminder", {"due": day("2026-12-31")}),
    ]
    url = "https://ex.cn"  # its links are 37 characters
    for limit in (14, 15, 20, 35, 37, 60, 500):
        path = with_link if limit >= 37 else plain
        templates = load(path, FakeProvider(max_param_chars=limit), public_url=url)
        for _ in range(80):
            village = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 600)))
            template, params = rng.choice(messages)
            _, values = templates.render(text_of(template, village=village, **params), public_url=url)
            assert values and all(0 < len(v) <= limit for v in values.values()), (limit, values)
    # A state longer than the limit keeps its start and says it was cut.
    path = write(tmp_path, changed("verdict", params=["state"], text="认定结果：${state}。"))
    tiny = Templates("aliyun", load(path).by_kind, 8)
    assert tiny.render(text_of("farmer.proposed"), public_url=None) == (
        "SMS_480000004",
        {"state": "初步认定纳入，…"},
    )


def test_the_link_needs_public_url(tmp_path: Path) -> None:
    path = write(
        tmp_path, changed("verdict", params=["receipt", "state", "link"], text="${receipt}${state}${link}")
    )
    templates = load(path, FakeProvider(max_param_chars=60), public_url="https://ex.gov.cn")
    assert templates.needs_link
    _, values = templates.render(text_of("farmer.entered"), public_url="https://ex.gov.cn/")
    assert values["link"] == f"https://ex.gov.cn/status?r={RECEIPT}"
    with pytest.raises(RenderError):
        templates.render(text_of("farmer.entered"), public_url=None)


def test_a_value_holding_an_id_number_is_never_rendered(tmp_path: Path) -> None:
    templates = load(write(tmp_path, TABLES))
    for village in ("幸福村110101199003071234", "幸福村 110101 19900307 1233", "村123456789012345"):
        with pytest.raises(RenderError, match="ID number"):
            templates.render(text_of("case.new", village=village), public_url=None)
    with pytest.raises(RenderError, match="ID number"):
        templates.render(
            SmsText(SmsKind.RECEIVED, {Param.RECEIPT: "110101199003071234", Param.STATE: "state.submitted"}),
            public_url=None,
        )
    # A receipt is never clipped: one too long for the provider is refused, not cut.
    with pytest.raises(RenderError, match="receipt"):
        templates.render(
            SmsText(
                SmsKind.RECEIVED,
                {
                    Param.RECEIPT: "R-2026-12-09-000001-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    Param.STATE: "state.submitted",
                },
            ),
            public_url=None,
        )


def test_a_text_missing_a_value_its_template_needs_is_refused() -> None:
    templates = load(ROOT / "sms-templates.aliyun.example.toml")
    with pytest.raises(RenderError, match="no date"):
        templates.render(
            SmsText(SmsKind.VISITED, {Param.RECEIPT: RECEIPT, Param.STATE: "state.visited"}), public_url=None
        )
    assert SmsKind.NEW_CASE not in templates.by_kind  # cadres without a chat get no texts


def test_a_receipt_past_the_millionth_case_still_goes() -> None:
    templates = load(ROOT / "sms-templates.aliyun.example.toml")
    text = SmsText(SmsKind.RECEIVED, {Param.RECEIPT: "202612091000001", Param.STATE: "state.submitted"})

    _, values = templates.render(text, public_url=None)

    assert "202612091000001" in values.values()
