"""dvsync's settings: one typed object from ``config.toml`` and ``DVSYNC__SECTION__KEY`` variables.

Precedence, lowest first: the defaults below < ``config.toml`` < the environment. The file is found
from the ``config_path`` argument, else ``$DVSYNC_CONFIG``, else ``./config.toml`` when it exists;
with none of them, every section holds its defaults (the sandbox's: ``auth.mode = "token"``).

Every mistake becomes one :class:`~core.errors.ConfigError` that names where the bad value
was written (``config.toml:7 [auth.tenant_id]`` or ``environment variable DVSYNC__AUTH__MODE``),
what is wrong and how to fix it; an unknown key (``tennant_id``) is an error with a "did you
mean" hint rather than being silently ignored. Secrets (client secret, certificate passphrase,
static token) are :class:`pydantic.SecretStr`: they are never required in the file, never shown
in ``repr``/``str`` and never echoed in an error.

Relative paths written in ``config.toml`` (and the defaults, when a file was loaded) are resolved
against the file's directory, so ``dvsync --config /srv/dvsync/config.toml`` works from any
working directory, e.g. under cron; relative paths from the environment are resolved against the
working directory, as a shell user expects.
"""

from __future__ import annotations

import os
import re
import warnings
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from connector.settings import (
    ENV_PREFIX,
    AuthSettings,
    DataverseSettings,
    HttpSettings,
    SettingsSection,
    check_sign_in,
    invalid_setting,
    normalise_choice,
    split_list,
)
from core.tomlfile import closest
from jobs.service.engine_settings import EngineSettings
from jobs.service.settings_console import ConsoleSettings
from jobs.service.settings_sources import LOAD_CONTEXT, MappingEnvSource, TomlSource

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_SCHEDULE_SETS",
    "KNOWN_JOBS",
    "JobsSettings",
    "LoggingSettings",
    "MappingsSettings",
    "MirrorSettings",
    "RoutingSettings",
    "ScheduleSet",
    "ScheduleSettings",
    "Settings",
    "SyncSettings",
    "WritebackSettings",
]

CONFIG_ENV_VAR = "DVSYNC_CONFIG"
# The analytics jobs the pipeline knows; `jobs.enabled` and schedule sets must name these.
KNOWN_JOBS: tuple[str, ...] = ("scoring", "duplicates", "rfm", "clv", "merge")
# Merging cannot be undone in Dynamics: the merge job runs only where it is named explicitly.
DEFAULT_JOBS: tuple[str, ...] = tuple(j for j in KNOWN_JOBS if j != "merge")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class MirrorSettings(SettingsSection):
    """Where the local SQLite mirror lives."""

    path: Path = Field(default=Path(".dvsync/mirror.sqlite"), description="SQLite file of the mirror.")


class MappingsSettings(SettingsSection):
    """Where the consultant's mapping files are."""

    dir: Path = Field(default=Path("mappings"), description="Directory of mappings/<table>.toml files.")


class SyncSettings(SettingsSection):
    """What to pull from Dataverse."""

    tables: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Logical names of the tables to pull; empty means every table with a mapping file.",
    )
    page_size: int = Field(
        default=5000, ge=1, le=5000, description="Prefer: odata.maxpagesize (Dataverse caps it at 5,000)."
    )
    # Tables without change tracking are read by a modifiedon window; its start reaches back this
    # far before the last modifiedon seen, to tolerate clock skew between Dataverse's servers.
    window_overlap_seconds: int = Field(
        default=300, ge=0, le=86400, description="Overlap of the modifiedon window, in seconds."
    )

    @field_validator("tables", mode="before")
    @classmethod
    def _tables(cls, value: Any) -> Any:
        value = split_list(value)
        if isinstance(value, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value


def _check_job_names(names: list[str]) -> list[str]:
    for name in names:
        if name not in KNOWN_JOBS:
            guess = closest(name, KNOWN_JOBS, n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise invalid_setting(f"unknown job `{name}`", f"{hint}known jobs: {', '.join(KNOWN_JOBS)}")
    if len(set(names)) != len(names):
        raise invalid_setting("a job is listed twice", "list each job once")
    return names


def _job_names_raw(value: Any) -> Any:
    value = split_list(value)
    if isinstance(value, list):
        return [normalise_choice(v) for v in value]
    return value


# A list of job names as the consultant types it (TOML list, JSON list or "scoring, rfm"),
# normalised and checked against KNOWN_JOBS; used by [jobs] enabled and every schedule set.
JobNames = Annotated[list[str], NoDecode, BeforeValidator(_job_names_raw), AfterValidator(_check_job_names)]


class CustomerValueRunSettings(SettingsSection):
    """When RFM and CLV are recomputed after the orders changed (``[jobs.customer_value]``)."""

    recompute: Literal["every_run", "nightly"] = Field(
        default="every_run",
        description="every_run: on any order change (never stale); nightly: at most once per UTC day.",
    )

    @field_validator("recompute", mode="before")
    @classmethod
    def _recompute(cls, value: Any) -> Any:
        return re.sub(r"[\s-]+", "_", value.strip().lower()) if isinstance(value, str) else value


class JobsSettings(SettingsSection):
    """Which analytics jobs run."""

    enabled: JobNames = Field(
        default_factory=lambda: list(DEFAULT_JOBS), description="Jobs run by `dvsync run`, in this order."
    )
    customer_value: CustomerValueRunSettings = Field(default_factory=CustomerValueRunSettings)


class WritebackSettings(SettingsSection):
    """How results are written back to Dataverse."""

    enabled: bool = Field(
        default=True, description="Write results back at all (false: compute and mirror only)."
    )
    # Safe by default: writing to a production org is an explicit choice (`--no-dry-run`, or
    # `dry_run = false` here), never what an unconfigured `dvsync run` or `dvsync schedule` does.
    dry_run: bool = Field(
        default=True,
        description="Plan and report the writes without sending them (false: write back).",
    )
    batch_size: int = Field(
        default=1000, ge=1, le=1000, description="Updates per $batch (Dataverse max 1,000)."
    )
    max_parallel: int | None = Field(
        default=None,
        ge=1,
        le=52,
        description="Concurrent $batch requests; default follows x-ms-dop-hint, never above 52.",
    )
    solution: str | None = Field(
        default=None, description="Unique name of the unmanaged solution that receives created columns."
    )
    publisher_prefix: str = Field(
        default="dvs",
        description="Customization prefix of that solution's publisher, e.g. dvs -> dvs_leadscore.",
    )

    @field_validator("solution", mode="before")
    @classmethod
    def _solution(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
                raise invalid_setting(
                    f"`{value}` is not a solution unique name",
                    "use the solution's Name (letters, digits, underscores), not its display name",
                )
        return value

    @field_validator("publisher_prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().rstrip("_").lower()
            # Dataverse's rule for a publisher's customization prefix.
            if not re.fullmatch(r"[a-z][a-z0-9]{1,7}", value) or value.startswith("mscrm"):
                raise invalid_setting(
                    f"`{value}` is not a valid customization prefix",
                    "2 to 8 letters or digits, starting with a letter, not `mscrm`",
                )
        return value


class RoutingSettings(SettingsSection):
    """Lead routing (rules in ``mappings/routing.toml``): off until an admin turns it on."""

    enabled: bool = Field(
        default=False,
        description="Assign unassigned open leads by mappings/routing.toml (writes the lead's owner).",
    )
    directory_max_age_hours: float = Field(
        default=24,
        gt=0,
        description="Hours the org's users and teams kept in the mirror are used before a re-read.",
    )


class ScheduleSet(SettingsSection):
    """One scheduled run: a cron expression and the jobs it runs (after a sync)."""

    cron: str = Field(description="Five-field cron expression, e.g. '0 2 * * *' (02:00 daily).")
    jobs: JobNames = Field(default_factory=list, description="Jobs this run executes; empty: sync only.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from datetime import datetime

        from croniter import croniter

        value = " ".join(value.split())
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise invalid_setting(
                f"`{value}` is not a five-field cron expression",
                "minute hour day-of-month month day-of-week, e.g. '*/30 * * * *' or '0 2 * * *'",
            )
        try:  # valid fields can still name a day that never comes (30 February, 31 April)
            croniter(value, datetime(2000, 1, 1)).get_next(datetime)
        except (ValueError, KeyError, OverflowError):
            raise invalid_setting(
                f"`{value}` never runs: no month has the day it names",
                "check day-of-month against month (February has at most 29 days; April, June, "
                "September and November 30)",
            ) from None
        return value


# The default runs: scores and duplicates stay fresh during the day; the order-history models, which
# change slowly and cost more, run at night.
DEFAULT_SCHEDULE_SETS: dict[str, dict[str, Any]] = {
    "frequent": {"cron": "*/30 * * * *", "jobs": ["scoring", "duplicates"]},
    "nightly": {"cron": "0 2 * * *", "jobs": ["rfm", "clv"]},
}


def _default_sets() -> dict[str, ScheduleSet]:
    return {name: ScheduleSet(**spec) for name, spec in DEFAULT_SCHEDULE_SETS.items()}


class ScheduleSettings(SettingsSection):
    """When `dvsync schedule` runs what."""

    timezone: str = Field(default="UTC", description="IANA time zone the cron expressions are read in.")
    sets: dict[str, ScheduleSet] = Field(
        default_factory=_default_sets, description="Named runs: [schedule.sets.<name>] with cron and jobs."
    )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise invalid_setting(
                f"unknown time zone `{value}`", "use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("sets")
    @classmethod
    def _set_names(cls, value: dict[str, ScheduleSet]) -> dict[str, ScheduleSet]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise invalid_setting(
                    f"`{name}` is not a usable schedule set name", "use letters, digits, _ and -"
                )
        return value


with warnings.catch_warnings():
    # The contract names the key `logging.json`; a field called `json` shadows pydantic's deprecated
    # BaseModel.json() method, which nothing here uses.
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class LoggingSettings(SettingsSection):
        """How much dvsync logs, and in which format."""

        level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
            default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL."
        )
        json: bool = Field(default=False, description="One JSON object per line (for log collectors).")

        @field_validator("level", mode="before")
        @classmethod
        def _level(cls, value: Any) -> Any:
            if isinstance(value, str):
                value = value.strip().upper()
                if value == "WARN":
                    value = "WARNING"
                if value not in LOG_LEVELS:
                    raise invalid_setting(
                        f"unknown log level `{value}`", f"use one of {', '.join(LOG_LEVELS)}"
                    )
            return value


class Settings(BaseSettings):
    """Everything dvsync is configured with; build it with :func:`load_settings`.

    ``Settings()`` alone reads only the process environment (no file, no path resolution);
    ``load_settings`` adds ``config.toml``, resolves relative paths and checks files exist.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        validate_default=True,
    )

    dataverse: DataverseSettings = Field(default_factory=DataverseSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    mappings: MappingsSettings = Field(default_factory=MappingsSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    writeback: WritebackSettings = Field(default_factory=WritebackSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Use init arguments > environment > config.toml; no .env or secrets directory."""
        context = LOAD_CONTEXT.get()
        env = context.env if context else os.environ
        sources: list[PydanticBaseSettingsSource] = [init_settings, MappingEnvSource(settings_cls, env)]
        data = context.doc.data if context and context.doc is not None else {}
        if data:
            sources.append(TomlSource(settings_cls, data))
        schedule = data.get("schedule")
        if not (isinstance(schedule, dict) and "sets" in schedule):
            # The default sets as the lowest source, so DVSYNC__SCHEDULE__SETS__NIGHTLY__CRON changes
            # the nightly cron and keeps its jobs; sets defined in the file replace them instead.
            sources.append(TomlSource(settings_cls, {"schedule": {"sets": DEFAULT_SCHEDULE_SETS}}))
        return tuple(sources)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        check_sign_in(self.dataverse, self.auth)
        return self
