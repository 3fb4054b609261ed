"""The sandbox's behaviour settings: service-protection limits, faults, change tracking, clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connector.sandbox.faults import FaultConfig

__all__ = ["Limits", "SandboxConfig"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Limits:
    """Service-protection limits per user over a sliding window (§6.1; Microsoft's numbers by default).

    Attributes:
        requests: requests allowed per window (6,000).
        execution_ms: combined execution time allowed per window, in milliseconds (1,200,000).
        concurrent: requests allowed in flight at once (52).
        window_seconds: the sliding window (300 s).
        enabled: turn all three off (for benchmarks).
    """

    requests: int = 6000
    execution_ms: int = 1_200_000
    concurrent: int = 52
    window_seconds: float = 300.0
    enabled: bool = True


@dataclass(frozen=True)
class SandboxConfig:
    """Everything about the sandbox's behaviour that tests and users may change.

    Attributes:
        limits: service-protection limits (:class:`Limits`).
        faults: fault injection shares and seed (:class:`FaultConfig`).
        change_tracking_disabled: logical names of tables whose change tracking is off; requests with
            ``Prefer: odata.track-changes`` on them get ``0x80072491``.
        change_token_retention: how long a delta token stays valid (Dataverse's default is 7 days,
            ``Organization.ExpireChangeTrackingInDays``); older tokens get ``0x80044352``.
        max_page_size: default and maximum ``odata.maxpagesize`` (5,000, §3.6).
        clock: returns the current UTC time; date functions, timestamps and tokens use it.
        monotonic: seconds counter for the service-protection windows.
        sleep: used for slow responses (injectable so tests never really wait).
        publisher_prefixes: customization prefixes accepted for created columns (``new`` is the
            default publisher's, §7.5).
        option_value_prefix: the default publisher's option value prefix (10000 → 100000000, ...).
        dop_hint: the ``x-ms-dop-hint`` response header, Dataverse's recommended degree of
            parallelism for a client (clients size their worker pools by it).
        duplicate_rules: table → columns that together make a duplicate, applied only to writes
            sent with ``MSCRM.SuppressDuplicateDetection: false`` (Dataverse's default rules match
            leads and contacts on e-mail and accounts on name).
        denied_privileges: privileges the sandbox's user does not hold (``prvWriteLead``); every
            other one is held. ``RetrieveUserSetOfPrivilegesByNames`` answers accordingly, and a
            Merge that needs one answers 403 ``0x80040220``.
        failing_merges: subordinate ids whose Merge fails like a plug-in exception (fault injection).
        solutions: the unmanaged solutions that exist, unique name to publisher prefix.
    """

    limits: Limits = field(default_factory=Limits)
    faults: FaultConfig = field(default_factory=FaultConfig)
    change_tracking_disabled: frozenset[str] = frozenset()
    change_token_retention: timedelta = timedelta(days=7)
    max_page_size: int = 5000
    clock: Callable[[], datetime] = _utc_now
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    publisher_prefixes: frozenset[str] = frozenset({"new", "dvs"})
    option_value_prefix: int = 10000
    dop_hint: int = 4
    # Privileges the sandbox's user lacks (connector/sandbox/roles.py), e.g. {"prvWriteLead"}.
    denied_privileges: frozenset[str] = frozenset()
    # Solutions that exist, unique name -> publisher prefix (connector/sandbox/solutions.py).
    solutions: dict[str, str] = field(default_factory=lambda: {"dvsync": "dvs"})
    duplicate_rules: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {
            "lead": ("emailaddress1",),
            "contact": ("emailaddress1",),
            "account": ("name",),
        }
    )
    failing_merges: frozenset[str] = frozenset()
