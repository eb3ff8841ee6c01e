"""What a running worker counts, for Prometheus (`/metrics` on the web app of every worker).

One registry per process (prometheus-client's default). Label values are small fixed sets: never a
chat id, a person or any text from outside.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

UPDATES = Counter("bot_updates_total", "Updates handled, by kind and result", ["kind", "result"])
UPDATE_SECONDS = Histogram(
    "bot_update_seconds", "From an update's arrival to its handler's end", ["kind"], buckets=LATENCY_BUCKETS
)
INBOX_LAG = Histogram(
    "bot_inbox_lag_seconds",
    "From an update's arrival (poll or webhook) to the start of its handling",
    buckets=LATENCY_BUCKETS,
)
INBOX_OPEN = Gauge("bot_inbox_open", "Updates recorded and not yet handled in this worker")
SENDS = Counter("bot_sends_total", "Bot API send and edit calls, by method and result", ["method", "result"])
SEND_SECONDS = Histogram("bot_send_seconds", "Bot API call durations of the sender", buckets=LATENCY_BUCKETS)
RETRY_AFTER = Counter("bot_retry_after_total", "429 answers from the Bot API")
RETRY_AFTER_SECONDS = Counter("bot_retry_after_seconds_total", "Seconds of waiting asked by 429 answers")
OUTBOX_DEPTH = Gauge("bot_outbox_messages", "Outbox rows by state (sampled)", ["state"])
OUTBOX_OLDEST_PENDING = Gauge("bot_outbox_oldest_pending_seconds", "Age of the oldest due, unsent message")
TICK_SECONDS = Histogram(
    "bot_tick_seconds",
    "Durations of the schedule, deadline and draft ticks",
    ["tick"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
)
TICKS_SKIPPED = Counter(
    "bot_ticks_skipped_total", "Ticks left to another worker that held the lock", ["tick"]
)
DB_WRITES = Counter("bot_db_write_transactions_total", "Committed transactions that wrote", ["by"])
LEADER = Gauge("bot_sender_leader", "1 while this worker is the one that sends (holds the sender lock)")


async def metrics_view(request: web.Request) -> web.Response:
    """GET /metrics: every metric of this process, in Prometheus' text format."""
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_route(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_view)
