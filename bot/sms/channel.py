"""The SMS channel's wiring: the provider from the settings, the template file checked at start,
the sender, and the delivery receipts (pushed to our callback, or pulled from the provider)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import ConfigError, SmsConfig
from bot.sms.port import Limits, Provider, Report
from bot.sms.sender import SmsSender
from bot.sms.templates import TemplateError, Templates, load_templates
from domain.ports import Clock, DeadlineRules
from domain.sms import SmsText
from storage.outbox_store import OutboxStore
from storage.sms import SmsStore
from storage.workers import WorkerRegistry

log = logging.getLogger(__name__)

RECEIPTS_PATH = "/sms/receipts/{token}"
ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com"
TENCENT_ENDPOINT = "https://sms.tencentcloudapi.com"
MAX_REPORTS = 1000  # receipts in one callback (a provider batches them; more is not one of theirs)


def make_provider(config: SmsConfig) -> Provider:
    if config.provider == "aliyun":
        from bot.sms.aliyun import AliyunSms

        return AliyunSms(
            config.key_id, config.key_secret, config.sign_name, endpoint=config.endpoint or ALIYUN_ENDPOINT
        )
    from bot.sms.tencent import TencentSms

    return TencentSms(
        config.key_id,
        config.key_secret,
        config.sdk_app_id,
        config.sign_name,
        region=config.region,
        endpoint=config.endpoint or TENCENT_ENDPOINT,
    )


class SmsChannel:
    """Texts to households without a chat: built from the settings when SMS_PROVIDER is set."""

    def __init__(
        self,
        config: SmsConfig,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        rules: DeadlineRules,
        *,
        public_url: str | None,
        worker: WorkerRegistry | None = None,
        provider: Provider | None = None,
        report_poll: float = 60.0,
    ) -> None:
        self.config = config
        self.provider = provider or make_provider(config)
        try:
            self.templates: Templates = load_templates(
                config.templates,
                self.provider,
                # Texts to cadres without a chat are not sent (see domain/sms.py): no templates asked.
                cadres=False,
                sign_name=config.sign_name,
                public_url=public_url,
            )
        except TemplateError as exc:
            raise ConfigError(str(exc)) from None
        if self.templates.needs_link and not public_url:
            raise ConfigError(
                "SMS_TEMPLATES: a template gives the status page's link, which needs PUBLIC_URL."
            )
        self.public_url = public_url
        self.store = SmsStore(sessions)
        self.clock = clock
        self.sender = SmsSender(
            OutboxStore(sessions),
            self.store,
            self.provider,
            self.render,
            clock,
            rules,
            limits=Limits(config.per_minute, config.per_hour, config.per_day),
            worker=worker,
        )
        self.report_poll = report_poll
        self._pull: asyncio.Task[None] | None = None

    def render(self, text: SmsText) -> tuple[str, dict[str, str]]:
        return self.templates.render(text, public_url=self.public_url)

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        self.sender.start()
        if self.config.callback_token is None:
            self._pull = asyncio.create_task(self._pull_loop(), name="sms-receipts")

    async def stop(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pull
            self._pull = None
        await self.sender.stop()

    async def close(self) -> None:
        await self.provider.close()

    def wake(self) -> None:
        self.sender.wake()

    # ------------------------------------------------------------------ receipts

    async def record(self, reports: list[Report]) -> int:
        """Write delivery receipts; returns how many named a text of ours."""
        known = 0
        for report in reports[:MAX_REPORTS]:
            known += await self.store.report(
                out_id=report.out_id,
                provider_id=report.provider_id,
                delivered=report.delivered,
                code=report.code,
                at=report.at or self.clock.now(),
            )
        return known

    async def pull_once(self, older_than: timedelta = timedelta(minutes=2), limit: int = 50) -> int:
        """Ask the provider for the receipts of texts that have none yet; returns how many came."""
        waiting = await self.store.awaiting_report(self.clock.now(), older_than, limit)
        earliest: dict[str, datetime] = {}
        for text in waiting:
            earliest[text.phone] = min(text.at, earliest.get(text.phone, text.at))
        found = 0
        for phone, since in earliest.items():
            found += await self.record(await self.provider.reports(phone, since))
        return found

    async def _pull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.report_poll)
            try:
                await self.pull_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sms: could not ask the provider for delivery receipts; trying again later")

    def mount(self, app: web.Application) -> None:
        """The provider's status callback (only with SMS_CALLBACK_TOKEN): PUBLIC_URL/sms/receipts/<token>."""
        token = self.config.callback_token
        if token is None:
            return
        app.router.add_post(RECEIPTS_PATH, receipts_handler(token, self.provider, self.record))


def receipts_handler(
    token: str, provider: Provider, record: Callable[[list[Report]], Awaitable[int]]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.match_info.get("token", "").encode(), token.encode()):
            raise web.HTTPNotFound()
        body = await request.read()
        try:
            reports, answer = provider.parse_callback(body, dict(request.headers))
        except ValueError:
            log.warning("sms: a receipt callback that is not %s's shape", provider.name)
            raise web.HTTPBadRequest() from None
        await record(reports)
        return web.Response(body=answer, content_type="application/json")

    return handle
