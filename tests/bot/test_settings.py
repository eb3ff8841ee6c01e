"""One quiet-hours window for every reminder: the policy file's, or QUIET_HOURS when set."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from bot.deadlines import PolicyRules
from bot.service import Service
from bot.settings import ConfigError, Settings, load
from tests.support import SHANGHAI


def settings(**values: object) -> Settings:
    return Settings(
        _env_file=None, telegram_bot_token="1:T", qr_secret="s" * 16, id_encryption_key="k" * 16, **values
    )  # type: ignore[arg-type]


def test_the_policy_files_quiet_hours_serve_case_deadlines_and_the_schedule_alike() -> None:
    service = Service(settings())
    assert (service.quiet_hours.start, service.quiet_hours.end) == (time(22, 0), time(7, 0))
    night = datetime(2026, 11, 23, 21, 30, tzinfo=SHANGHAI)
    assert not service.quiet_hours.contains(night)
    assert not service.rules.quiet(night)


def test_quiet_hours_from_the_settings_replace_the_policys_everywhere() -> None:
    chosen = settings(quiet_hours="21:00-08:00")
    policy = chosen.load_policy()
    assert (policy.quiet_start, policy.quiet_end) == (time(21, 0), time(8, 0))
    service = Service(chosen)
    night = datetime(2026, 11, 23, 21, 30, tzinfo=SHANGHAI)
    assert service.quiet_hours.contains(night)
    assert PolicyRules(policy).quiet(night) and service.rules.quiet(night)
    assert service.rules.next_outside_quiet(night) == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)


def test_a_bad_window_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="QUIET_HOURS"):
        load(quiet_hours="late", _env_file=None)
