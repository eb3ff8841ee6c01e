"""Command line: run the service and the township's tools.

python -m bot run [--require-token]     (no token: the sandbox, see bot/sandbox/)
python -m bot migrate
python -m bot roster import FILE
python -m bot campaign import FILE
python -m bot export reports [--township NAME] [--out FILE]
python -m bot export ledger --township NAME [--out FILE]
python -m bot invite PHONE [--days 7]
python -m bot qr link --village CODE [--valid-until YYYY-MM-DD] [--png FILE]
python -m bot qr flyer (--village CODE -o FILE.pdf | --all -o DIR) [--batch ID] [--valid-until YYYY-MM-DD]
                       [--png FILE] [--svg FILE] [--lang zh_Hans|en]
python -m bot qr scans
python -m bot keys new | rotate [--batch 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from telegram import Bot
from telegram.error import TelegramError

from bot import logs
from bot import settings as settings_module
from bot.clock import SystemClock
from bot.crypto import new_key, protector_for
from bot.roster_file import UnreadableFile, read_rows
from bot.settings import ConfigError, Settings
from domain import people, roster
from domain.ports import UnitOfWork
from domain.validation import Invalid
from locales import catalog_for, gettext
from qr.links import deep_link, flyer_link, qr_png
from qr.payload import BATCH, sign_village
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.uow import SqlUnitOfWorkFactory

T = TypeVar("T")


def _say(settings: Settings, key: str, **params: object) -> str:
    return gettext(catalog_for(settings.default_locale), key).format(**params)


def _write_private(path: str | Path, data: bytes) -> None:
    """Write an export readable by its owner only: the file is created 0o600, never wider first."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        # O_CREAT's mode applies to a new file only; an old export keeps its mode unless narrowed here,
        # before anything of the new export is in it.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


async def _with_uow(settings: Settings, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with SqlUnitOfWorkFactory(session_factory(engine))() as uow:
            result = await work(uow)
            await uow.commit()
            return result
    finally:
        await engine.dispose()


async def _bot_username(settings: Settings) -> str:
    """BOT_USERNAME, or ask the Bot API (getMe) with the token."""
    if settings.bot_username:
        return settings.bot_username
    try:
        settings.token()
    except ConfigError:
        raise ConfigError(
            "BOT_USERNAME is not set and there is no TELEGRAM_BOT_TOKEN to ask Telegram for it."
        ) from None
    bot = Bot(
        settings.token(),
        base_url=settings.telegram_api_base_url,
        base_file_url=settings.telegram_api_file_url,
    )
    try:
        async with bot:
            return bot.username
    except TelegramError as exc:
        raise ConfigError(
            f"could not ask the Bot API for the bot's username ({exc}); set BOT_USERNAME."
        ) from None


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.service import run_forever

    try:
        settings.token()
        sandbox = False
    except ConfigError:
        if args.require_token:
            raise
        sandbox = True
    if sandbox:
        # No token: the real service against a local Bot API, with demo people (bot/sandbox/).
        from bot.sandbox.runtime import run_sandbox

        asyncio.run(run_sandbox(settings))
        return 0
    settings.secret()
    settings.load_policy()
    protector_for(settings)  # ID_ENCRYPTION_KEY is required: one line now, not a trace at start
    asyncio.run(run_forever(settings))
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    async def go() -> None:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(go())
    print("database is up to date")
    return 0


def cmd_roster_import(settings: Settings, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        rows = roster.parse(read_rows(path))
        report = asyncio.run(_with_uow(settings, lambda uow: roster.apply(uow, rows)))
    except FileNotFoundError:
        print(f"{path}: file not found", file=sys.stderr)
        return 2
    except UnreadableFile as exc:
        print(exc, file=sys.stderr)
        return 2
    except roster.RosterRejected as exc:
        for problem in exc.problems:
            text = _say(settings, problem.key, **problem.params)
            print(_say(settings, "cli.roster_line", line=problem.line, problem=text), file=sys.stderr)
        print(_say(settings, "cli.roster_rejected"), file=sys.stderr)
        return 1
    print(
        _say(
            settings,
            "cli.roster_done",
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            villages=report.villages_created,
        )
    )
    return 0


def cmd_campaign_import(settings: Settings, args: argparse.Namespace) -> int:
    from domain import campaigns

    path = Path(args.file)
    clock = SystemClock(settings.zone)
    try:
        spec = campaigns.parse(read_rows(path), clock.now().date())
        campaign_id = asyncio.run(_with_uow(settings, lambda uow: campaigns.create(uow, clock, spec)))
    except FileNotFoundError:
        print(f"{path}: file not found", file=sys.stderr)
        return 2
    except UnreadableFile as exc:
        print(exc, file=sys.stderr)
        return 2
    except campaigns.CampaignRejected as exc:
        for problem in exc.problems:
            text = _say(settings, problem.key, **problem.params)
            print(_say(settings, "campaign.cli_line", line=problem.line, problem=text), file=sys.stderr)
        print(_say(settings, "campaign.cli_rejected"), file=sys.stderr)
        return 1
    print(_say(settings, "campaign.cli_done", name=spec.name, id=campaign_id, phases=len(spec.phases)))
    return 0


def cmd_export_reports(settings: Settings, args: argparse.Namespace) -> int:
    from domain import reports
    from handlers.sheets import reports_xlsx

    async def find(uow: UnitOfWork) -> reports.Export | None:
        work = uow
        if args.township:
            township = await uow.geography.township_by_name(args.township)
            township_id = township.id if township else None
        else:
            township_id = await work.campaigns.newest_township()
        return await reports.export(work, township_id) if township_id is not None else None

    data = asyncio.run(_with_uow(settings, find))
    if data is None:
        print(_say(settings, "report.no_campaign"), file=sys.stderr)
        return 1
    out = Path(args.out)
    _write_private(out, reports_xlsx(data, catalog_for(settings.default_locale)))
    print(_say(settings, "report.cli_written", path=str(out), count=len(data.reports)))
    return 0


def cmd_export_ledger(settings: Settings, args: argparse.Namespace) -> int:
    from domain import ledger
    from handlers.sheets import ledger_xlsx

    async def find(uow: UnitOfWork) -> list[list[object]] | None:
        township = await uow.geography.township_by_name(args.township)
        if township is None:
            return None
        return ledger.export_rows(await uow.ledger.of_township(township.id))

    rows = asyncio.run(_with_uow(settings, find))
    if rows is None:
        print(_say(settings, "ledger.cli_unknown_township", name=args.township), file=sys.stderr)
        return 1
    out = Path(args.out)
    _write_private(out, ledger_xlsx(rows, catalog_for(settings.default_locale)))
    print(_say(settings, "ledger.cli_written", path=str(out), count=len(rows)))
    return 0


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    username = asyncio.run(_bot_username(settings))
    clock = SystemClock(settings.zone)
    try:
        invite = asyncio.run(
            _with_uow(
                settings, lambda uow: people.issue_invite(uow, clock, args.phone, timedelta(days=args.days))
            )
        )
    except Invalid as exc:
        print(_say(settings, exc.key), file=sys.stderr)
        return 1
    expires = invite.expires_at.strftime("%Y-%m-%d %H:%M")
    print(_say(settings, "cli.invite_link", name=invite.person.name, expires=expires))
    print(deep_link(username, invite.payload))
    return 0


def cmd_qr_link(settings: Settings, args: argparse.Namespace) -> int:
    secret = settings.secret()
    village = asyncio.run(_with_uow(settings, lambda uow: uow.geography.village_by_code(args.village)))
    if village is None:
        print(_say(settings, "cli.unknown_village", code=args.village), file=sys.stderr)
        return 1
    to_landing = settings.qr_to_landing()
    # As on the flyer: the landing page when QR_TARGET chooses it, else the bot's deep link.
    username = "" if to_landing else asyncio.run(_bot_username(settings))
    payload = sign_village(secret, village.code, args.valid_until)
    link = flyer_link(payload, bot_username=username, public_url=settings.public_url, to_landing=to_landing)
    print(_say(settings, "cli.village_link", village=village.name, until=args.valid_until.isoformat()))
    print(link)
    if args.png:
        Path(args.png).write_bytes(qr_png(link))
    return 0


def cmd_qr_flyer(settings: Settings, args: argparse.Namespace) -> int:
    from domain.model import Village
    from qr import flyer

    secret = settings.secret()
    font = settings.flyer_font_file()
    to_landing = settings.qr_to_landing()
    # The batch is signed into the payload, so scans are counted per village and printing.
    batch = args.batch or datetime.now(settings.zone).strftime("%y%m%d")

    async def find(uow: UnitOfWork) -> list[Village]:
        if args.all:
            return await uow.geography.all_villages()
        village = await uow.geography.village_by_code(args.village)
        return [village] if village else []

    villages = asyncio.run(_with_uow(settings, find))
    if not villages:
        if args.all:
            print(
                "the roster has no villages: import one first (python -m bot roster import FILE)",
                file=sys.stderr,
            )
        else:
            print(_say(settings, "cli.unknown_village", code=args.village), file=sys.stderr)
        return 1
    # The landing page names the bot itself; only a code that opens Telegram needs the username here.
    username = "" if to_landing else asyncio.run(_bot_username(settings))
    flyers = [
        flyer.Flyer(
            village_code=village.code,
            village=village.name,
            township=village.township_name,
            link=flyer_link(
                sign_village(secret, village.code, args.valid_until, batch),
                bot_username=username,
                public_url=settings.public_url,
                to_landing=to_landing,
            ),
            batch=batch,
            valid_until=args.valid_until,
            web_form=to_landing,
            language=args.lang,
        )
        for village in villages
    ]
    out = Path(args.output)
    try:
        flyer.font_for(font, flyers)  # the font is checked once, before any file is written
        if args.all:
            out.mkdir(parents=True, exist_ok=True)
            written = [(one, out / f"{one.village_code}.pdf") for one in flyers]
        else:
            written = [(flyers[0], out)]
        for one, path in written:
            path.write_bytes(flyer.render([one], font))
    except flyer.FlyerFontError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.png:
        Path(args.png).write_bytes(flyer.code_png(flyers[0].link))
    if args.svg:
        Path(args.svg).write_bytes(flyer.code_svg(flyers[0].link))
    for one, path in written:
        print(_say(settings, "cli.village_link", village=one.village, until=one.valid_until.isoformat()))
        print(one.link)
        print(path)
    return 0


def cmd_qr_scans(settings: Settings, args: argparse.Namespace) -> int:
    """How often each village's printed code was scanned, per print batch: web and Telegram."""
    from domain.model import ScanTotal

    async def read(uow: UnitOfWork) -> tuple[list[ScanTotal], dict[str, str]]:
        totals = await uow.scans.totals()
        names = {v.code: v.name for v in await uow.geography.all_villages()}
        return totals, names

    totals, names = asyncio.run(_with_uow(settings, read))
    if not totals:
        print(_say(settings, "web.scans_none"))
        return 0
    print(_say(settings, "web.scans_header"))
    for row in totals:
        name = names.get(row.village_code, "?")
        batch = row.batch or "-"
        total = row.web + row.telegram
        print(f"{row.village_code}\t{name}\t{batch}\t{row.web}\t{row.telegram}\t{total}")
    return 0


def _add_qr_scans(qr_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scans = qr_sub.add_parser("scans", help="scans of the printed codes per village and batch")
    scans.set_defaults(handler=cmd_qr_scans)


def cmd_export_cases(settings: Settings, args: argparse.Namespace) -> int:
    from domain import export
    from handlers.xlsx import cases_workbook

    zone = settings.zone
    try:
        days = export.period([args.since.isoformat(), args.until.isoformat()], SystemClock(zone).now().date())
    except export.ExportRefused as exc:
        print(_say(settings, exc.key, **exc.params), file=sys.stderr)
        return 2
    since, until = days.bounds(zone)
    protector = protector_for(settings)

    async def work(uow: UnitOfWork) -> list[dict[str, object]]:
        return await export.rows(
            uow, protector, township_name=args.township, since=since, until=until, requester=None
        )

    try:
        found = asyncio.run(_with_uow(settings, work))
    except export.ExportRefused as exc:
        print(_say(settings, exc.key, township=args.township or ""), file=sys.stderr)
        return 1
    catalog = catalog_for(settings.default_locale)
    _write_private(args.output, cases_workbook(found, export.COLUMNS, catalog, zone))
    print(_say(settings, "cli.exported", count=len(found), file=args.output))
    return 0


def cmd_keys_new(settings: Settings, args: argparse.Namespace) -> int:
    """A fresh key for ID_ENCRYPTION_KEY on stdout (and nowhere else: it is not logged)."""
    print(new_key())
    print(_say(settings, "cli.keys_new"), file=sys.stderr)
    return 0


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    """Re-seal every stored ID number under ID_ENCRYPTION_KEY; 1 when some no key opens."""
    from storage.sealed_ids import Rotation, rotate

    if args.batch < 1:
        print("--batch: at least 1 row a transaction", file=sys.stderr)
        return 2
    protector = protector_for(settings)

    async def go() -> Rotation:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await rotate(session_factory(engine), protector, batch=args.batch)
        finally:
            await engine.dispose()

    done = asyncio.run(go())
    for key, counts in (("cli.keys_declarations", done.declarations), ("cli.keys_drafts", done.drafts)):
        print(
            _say(settings, key, rotated=counts.rotated, current=counts.current, unreadable=counts.unreadable)
        )
    if done.total.unreadable:
        receipts = ", ".join(done.unreadable_receipts) or "-"
        print(_say(settings, "cli.keys_unreadable", receipts=receipts), file=sys.stderr)
        return 1
    return 0


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="the ID-number encryption key (ID_ENCRYPTION_KEY)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser("new", help="print a new random key for ID_ENCRYPTION_KEY").set_defaults(
        handler=cmd_keys_new
    )
    rotate = keys_sub.add_parser(
        "rotate", help="re-seal every stored ID number under ID_ENCRYPTION_KEY (after changing it)"
    )
    rotate.add_argument("--batch", type=int, default=200, help="rows per transaction (default 200)")
    rotate.set_defaults(handler=cmd_keys_rotate)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text}") from None


MAX_INVITE_DAYS = 90


def _invite_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_INVITE_DAYS:
        raise argparse.ArgumentTypeError(f"days must be a whole number from 1 to {MAX_INVITE_DAYS}: {text}")
    return days


def _batch(text: str) -> str:
    if not BATCH.match(text):
        raise argparse.ArgumentTypeError(f"a batch id is 1-8 letters or digits: {text}")
    return text


def _default_valid_until() -> date:
    return date(date.today().year + 2, 12, 31)


@contextlib.contextmanager
def _result_only() -> Iterator[None]:
    """A command's output is its result: what it logs on the way (the migrations Alembic applies
    first, the connection pool, a message nobody can be sent) stays out of it while it runs. Its
    warnings and errors still go to stderr; LOG_LEVEL=DEBUG shows the rest but Alembic's steps."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    levels = {root: root.level, alembic: alembic.level}
    alembic.setLevel(max(alembic.level, logging.WARNING))
    if root.getEffectiveLevel() > logging.DEBUG:
        root.setLevel(max(root.level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level in levels.items():
            logger.setLevel(level)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m bot", description="防返贫监测申报机器人")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run the bot (polling) and its web server; without a token, the local sandbox"
    )
    run.add_argument(
        "--require-token",
        action="store_true",
        help="stop with an error instead of starting the sandbox when TELEGRAM_BOT_TOKEN is unset",
    )
    run.set_defaults(handler=cmd_run)
    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        handler=cmd_migrate
    )
    roster_cmd = commands.add_parser("roster", help="the roster of cadres and township staff")
    roster_sub = roster_cmd.add_subparsers(dest="roster_command", required=True)
    importer = roster_sub.add_parser("import", help="import a CSV (UTF-8) or .xlsx roster")
    importer.add_argument("file")
    importer.set_defaults(handler=cmd_roster_import)
    campaign_cmd = commands.add_parser("campaign", help="campaigns: phases, deadlines and reminders")
    campaign_sub = campaign_cmd.add_subparsers(dest="campaign_command", required=True)
    campaign_import = campaign_sub.add_parser("import", help="import a campaign file (CSV UTF-8 or .xlsx)")
    campaign_import.add_argument("file")
    campaign_import.set_defaults(handler=cmd_campaign_import)
    export_cmd = commands.add_parser("export", help="spreadsheets for the township")
    export_sub = export_cmd.add_subparsers(dest="export_command", required=True)
    export_reports = export_sub.add_parser(
        "reports", help="the progress reports of the newest campaign (.xlsx)"
    )
    export_reports.add_argument("--township", help="township name (default: that of the newest campaign)")
    export_reports.add_argument("--out", default="reports.xlsx", help="file to write (default reports.xlsx)")
    export_reports.set_defaults(handler=cmd_export_reports)
    export_ledger = export_sub.add_parser("ledger", help="the problem ledger of a township (.xlsx)")
    export_ledger.add_argument("--township", required=True, help="township name")
    export_ledger.add_argument(
        "--out", default="ledger-export.xlsx", help="file to write (default ledger-export.xlsx)"
    )
    export_ledger.set_defaults(handler=cmd_export_ledger)
    invite = commands.add_parser("invite", help="a one-time link that binds a roster person's Telegram")
    invite.add_argument("phone")
    invite.add_argument(
        "--days",
        type=_invite_days,
        default=7,
        help=f"days the link stays valid, 1-{MAX_INVITE_DAYS} (default 7)",
    )
    invite.set_defaults(handler=cmd_invite)
    qr_cmd = commands.add_parser("qr", help="farmer QR links and printable flyers")
    qr_sub = qr_cmd.add_subparsers(dest="qr_command", required=True)
    link = qr_sub.add_parser("link", help="the signed deep link for a village's QR code")
    link.add_argument("--village", required=True, help="village code from the roster")
    link.add_argument(
        "--valid-until",
        type=_date,
        default=_default_valid_until(),
        help="last day the printed code works (default: end of the year after next)",
    )
    link.add_argument("--png", help="also write the QR code as a PNG file")
    link.set_defaults(handler=cmd_qr_link)
    flyer = qr_sub.add_parser("flyer", help="printable A4 flyers (PDF) with a village's QR code")
    which = flyer.add_mutually_exclusive_group(required=True)
    which.add_argument("--village", help="village code from the roster")
    which.add_argument("--all", action="store_true", help="every village of the roster, one PDF each")
    flyer.add_argument(
        "-o", "--output", required=True, help="the PDF to write; with --all, the folder for CODE.pdf files"
    )
    flyer.add_argument(
        "--batch",
        type=_batch,
        help="printed batch id, 1-8 letters or digits, signed into the code (default: today, YYMMDD)",
    )
    flyer.add_argument(
        "--valid-until",
        type=_date,
        default=_default_valid_until(),
        help="last day the printed code works (default: end of the year after next)",
    )
    flyer.add_argument("--png", help="also write the bare QR code as a PNG file (with --village)")
    flyer.add_argument("--svg", help="also write the bare QR code as an SVG file (with --village)")
    flyer.add_argument(
        "--lang", choices=("zh_Hans", "en"), default="zh_Hans", help="the flyer's language (default zh_Hans)"
    )
    flyer.set_defaults(handler=cmd_qr_flyer)
    _add_qr_scans(qr_sub)
    cases = export_sub.add_parser("cases", help="declarations, one row each, for the national system")
    cases.add_argument("--township", help="township name (default: all)")
    cases.add_argument("--from", dest="since", type=_date, required=True, help="first day (YYYY-MM-DD)")
    cases.add_argument("--to", dest="until", type=_date, required=True, help="last day, included")
    cases.add_argument("-o", "--output", required=True, help="the .xlsx file to write")
    cases.set_defaults(handler=cmd_export_cases)
    _add_keys(commands)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if getattr(args, "all", False) and (args.png or args.svg):
        top.error("--png and --svg write one village's code: use them with --village")
    try:
        settings = settings_module.load()
        # Every record redacted (token, phone and ID numbers), noisy libraries quiet: bot/logs.py.
        logs.configure(settings)
        if args.handler is cmd_run:
            return int(args.handler(settings, args))
        with _result_only():
            return int(args.handler(settings, args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
