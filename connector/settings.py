"""dvsync's settings: one typed object from ``config.toml`` and ``DVSYNC__SECTION__KEY`` variables.

Precedence, lowest first: the defaults below < ``config.toml`` < the environment. The file is found
from the ``config_path`` argument, else ``$DVSYNC_CONFIG``, else ``./config.toml`` when it exists;
with none of them, every section holds its defaults (the sandbox's: ``auth.mode = "token"``).

Every mistake becomes one :class:`~connector.errors.ConfigError` that names where the bad value
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

import difflib
import ipaddress
import json
import os
import re
import warnings
import zoneinfo
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError

from connector.errors import ConfigError
from connector.tomlfile import TomlFile, closest, load_toml

__all__ = [
    "AUTH_MODES",
    "CLOUDS",
    "CONFIG_ENV_VAR",
    "DEFAULT_SCHEDULE_SETS",
    "ENV_PREFIX",
    "KNOWN_JOBS",
    "LOOPBACK_HOSTS",
    "AuthSettings",
    "Cloud",
    "DataverseSettings",
    "HttpSettings",
    "JobsSettings",
    "LoggingSettings",
    "MappingsSettings",
    "MirrorSettings",
    "ScheduleSet",
    "ScheduleSettings",
    "Settings",
    "SettingsError",
    "SyncSettings",
    "WritebackSettings",
    "cloud_for_host",
    "env_var_name",
    "is_loopback_host",
    "load_settings",
    "validate_environment_url",
]

ENV_PREFIX = "DVSYNC__"
CONFIG_ENV_VAR = "DVSYNC_CONFIG"
AUTH_MODES: tuple[str, ...] = ("client_secret", "certificate", "device_code", "token")
MSAL_MODES: frozenset[str] = frozenset({"client_secret", "certificate", "device_code"})
# The analytics jobs the pipeline knows; `jobs.enabled` and schedule sets must name these.
KNOWN_JOBS: tuple[str, ...] = ("scoring", "duplicates", "rfm", "clv")
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Cloud:
    """A Microsoft cloud that hosts Dataverse: its environment host pattern and its Entra login host.

    Attributes:
        name: a short label for messages.
        pattern: matches the registrable part of an environment host (``crm4.dynamics.com``).
        authority_host: the Microsoft Entra ID host that issues tokens for that cloud.
    """

    name: str
    pattern: re.Pattern[str]
    authority_host: str


# Environment hosts per cloud and the Entra login host that issues their tokens, from Microsoft
# Learn: "Datacenter regions" (crm, crm2 ... crm21 for the commercial regions; crm9 is US GCC, which
# signs in with the commercial Entra ID), "Power Apps US Government" (GCC High:
# crm.microsoftdynamics.us, DoD: crm.appsplatform.us, both with login.microsoftonline.us) and
# "Power Platform operated by 21Vianet" (crm.dynamics.cn, login.partner.microsoftonline.cn).
CLOUDS: tuple[Cloud, ...] = (
    Cloud("commercial", re.compile(r"crm\d*\.dynamics\.com"), "login.microsoftonline.com"),
    Cloud("US Government GCC High", re.compile(r"crm\.microsoftdynamics\.us"), "login.microsoftonline.us"),
    Cloud("US Government DoD", re.compile(r"crm\.appsplatform\.us"), "login.microsoftonline.us"),
    Cloud("China (21Vianet)", re.compile(r"crm\.dynamics\.cn"), "login.partner.microsoftonline.cn"),
)
# Domains under which every Dataverse host has the shape `<org>[.api].<crm label>.<domain>`; any
# other host below them is another product (Finance & Operations lives at *.operations.dynamics.com).
_DATAVERSE_DOMAINS = ("dynamics.com", "microsoftdynamics.us", "appsplatform.us", "dynamics.cn")
DEFAULT_AUTHORITY_HOST = "login.microsoftonline.com"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _invalid(message: str, hint: str | None = None, key: str | None = None) -> PydanticCustomError:
    """A validation error that keeps our wording (pydantic would prefix "Value error, ")."""
    return PydanticCustomError("dvsync", "{message}", {"message": message, "hint": hint, "key": key})


def cloud_for_host(host: str) -> Cloud | None:
    """Return the Microsoft cloud whose Dataverse hosts include ``host``, or None for other hosts."""
    labels = host.lower().rstrip(".").split(".")
    for cloud in CLOUDS:
        for start in range(1, len(labels)):
            if cloud.pattern.fullmatch(".".join(labels[start:])):
                return cloud
    return None


def is_loopback_host(host: str) -> bool:
    """True for a host name or address that never leaves this machine (where plain http is safe)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_environment_url(value: str) -> str:
    """Check a Dataverse environment URL and return it as ``scheme://host[:port]``.

    https is required; plain http only for a loopback host (the sandbox). Hosts in Microsoft's
    Dataverse domains must have Dataverse's shape (``<org>.crm4.dynamics.com``); a host that is a
    near miss of one of those domains (``contoso.crm.dynamic.com``) is refused with a "did you
    mean"; any other https host is accepted, because custom domains and proxies in front of an
    environment are legitimate.

    Args:
        value: the URL as written by the user.

    Returns:
        The normalised URL, lower-case host, no trailing slash.

    Raises:
        PydanticCustomError: with a message and a hint saying how to fix it.
    """
    text = value.strip()
    example = "https://contoso.crm.dynamics.com"
    if "://" not in text:
        raise _invalid(f"`{text}` is not a URL", f"write the environment URL with its scheme, e.g. {example}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _invalid(f"`{text}` is not a valid URL ({exc})", f"e.g. {example}") from None
    if parts.username or parts.password:
        # Never echo this URL: its user-info part may be a password.
        raise _invalid(
            "the environment URL must not contain a user name or password",
            "credentials go in the [auth] section or DVSYNC__AUTH__* environment variables",
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise _invalid(f"`{text}` has no host name", f"e.g. {example}")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _invalid(
            f"`{text}` uses `{parts.scheme}://`", f"Dataverse is reached over https, e.g. {example}"
        )
    if scheme == "http" and not is_loopback_host(host):
        raise _invalid(
            f"`{text}` uses plain http, which would send the bearer token unencrypted",
            "use https://; plain http is allowed only for a loopback host (127.0.0.1, localhost, ::1), "
            "i.e. the sandbox",
        )
    path = parts.path.rstrip("/")
    if path.lower().startswith("/api/data"):
        raise _invalid(
            f"`{text}` is the Web API address, not the environment URL",
            f"give only `{scheme}://{parts.netloc}`; dvsync adds /api/data/<version>/ itself",
        )
    if path or parts.query or parts.fragment:
        raise _invalid(
            f"`{text}` has a path, query or fragment",
            f"give only the environment's scheme and host, e.g. `{scheme}://{parts.netloc}`",
        )
    _check_dataverse_host(host)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}"


def _check_dataverse_host(host: str) -> None:
    """Refuse hosts inside (or a typo away from) Microsoft's Dataverse domains that cannot be right."""
    labels = host.split(".")
    if len(labels) < 2 or is_loopback_host(host):
        return
    domain = ".".join(labels[-2:])
    find_url = "copy it from Power Platform admin center > Environments > your environment > Environment URL"
    if domain in _DATAVERSE_DOMAINS:
        # `crm.dynamics.com` alone has no environment in it.
        if any(cloud.pattern.fullmatch(host) for cloud in CLOUDS):
            raise _invalid(
                f"`{host}` has no environment name in front of it", f"e.g. https://contoso.{host}; {find_url}"
            )
        if cloud_for_host(host) is None:
            hint = find_url
            if "operations" in labels:
                hint = f"this looks like a Finance & Operations URL; dvsync needs the Dataverse URL ({hint})"
            raise _invalid(f"`{host}` is not a Dataverse environment host", hint)
        return
    suggestion = closest(domain, _DATAVERSE_DOMAINS, n=1)
    if suggestion and suggestion[0] != domain and _similar(domain, suggestion[0]):
        fixed = ".".join([*labels[:-2], suggestion[0]])
        raise _invalid(f"`{host}` is not a Dataverse host", f"did you mean `{fixed}`?")


def _similar(a: str, b: str) -> bool:
    # Stricter than closest()'s default: `contoso.com` must not look like a typo of `dynamics.com`.
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _normalise_choice(value: Any) -> Any:
    return value.strip().lower().replace("-", "_") if isinstance(value, str) else value


def _split_list(value: Any) -> Any:
    """Accept a list, a JSON list or a comma-separated string (the form people type in a shell)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise _invalid(
                f"`{text}` is not a valid JSON list", 'write e.g. ["rfm", "clv"] or rfm,clv'
            ) from None
    return [item.strip() for item in text.split(",") if item.strip()]


class _Section(BaseModel):
    # Unknown keys are reported (with "did you mean") before validation; forbid is the backstop.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataverseSettings(_Section):
    """Where the Dataverse environment is and how to reach it."""

    url: str | None = Field(
        default=None,
        description="Environment URL, e.g. https://contoso.crm4.dynamics.com (no /api/data path).",
    )
    api_version: str = Field(default="v9.2", description="Web API version in the URL path.")
    timeout_connect: float = Field(
        default=10.0, gt=0, allow_inf_nan=False, description="Seconds to wait for a TCP/TLS connect."
    )
    timeout_read: float = Field(
        default=120.0, gt=0, allow_inf_nan=False, description="Seconds to wait for response bytes."
    )
    ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of CA certificates to trust instead of the system store (TLS-inspecting "
        "proxy, sandbox with --tls).",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        if isinstance(value, str):
            return validate_environment_url(value) if value.strip() else None
        return value

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        value = value.strip()
        if not re.fullmatch(r"v\d+\.\d+", value):
            raise _invalid(f"`{value}` is not a Web API version", 'write it like "v9.2"')
        return value

    def require_url(self) -> str:
        """Return ``url`` or raise a ConfigError saying how to set it."""
        if not self.url:
            raise ConfigError(
                "no Dataverse environment URL is configured",
                key="dataverse.url",
                hint=f"set `url` under [dataverse] in config.toml or {env_var_name(('dataverse', 'url'))}, "
                "e.g. https://contoso.crm.dynamics.com",
            )
        return self.url


class AuthSettings(_Section):
    """How dvsync gets its bearer token (see docs/configuration.md for each mode)."""

    mode: Literal["client_secret", "certificate", "device_code", "token"] = Field(
        default="token",
        description="client_secret | certificate | device_code | token (a static bearer token, the sandbox).",
    )
    tenant_id: str | None = Field(default=None, description="Directory (tenant) id or verified domain.")
    client_id: str | None = Field(
        default=None, description="Application (client) id of the app registration."
    )
    client_secret: SecretStr | None = Field(default=None, description="Client secret; from the environment.")
    certificate_path: Path | None = Field(
        default=None, description="PEM (private key + certificate) or PFX/PKCS#12 file."
    )
    certificate_thumbprint: str | None = Field(
        default=None, description="SHA-1 thumbprint (hex); computed from the certificate when omitted."
    )
    certificate_passphrase: SecretStr | None = Field(
        default=None, description="Passphrase of an encrypted key or PFX; from the environment."
    )
    certificate_send_chain: bool = Field(
        default=False, description="Send the certificate (x5c) for Subject Name/Issuer authentication."
    )
    token: SecretStr | None = Field(default=None, description="Static bearer token (mode token).")
    token_cache_path: Path | None = Field(
        default=None, description="Device-code token cache file; default ~/.cache/dvsync/token_cache.json."
    )
    authority_host: str | None = Field(
        default=None, description="Entra ID login host; default chosen from the environment URL's cloud."
    )

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        value = _normalise_choice(value)
        if isinstance(value, str) and value not in AUTH_MODES:
            guess = closest(value, AUTH_MODES, n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise _invalid(f"unknown auth mode `{value}`", f"{hint}valid modes: {', '.join(AUTH_MODES)}")
        return value

    @field_validator("tenant_id", mode="before")
    @classmethod
    def _tenant(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None
        if value.lower() in ("common", "consumers"):
            raise _invalid(
                f"tenant `{value}` cannot sign in to Dataverse",
                "use your directory (tenant) id from Entra admin center > Overview, or a verified domain "
                "such as contoso.onmicrosoft.com",
            )
        if not (_GUID.match(value) or _DOMAIN.match(value) or value.lower() == "organizations"):
            raise _invalid(
                f"`{value}` is neither a tenant id (GUID) nor a domain name",
                "use the Directory (tenant) ID shown in Entra admin center > Overview",
            )
        return value

    @field_validator("client_id", mode="before")
    @classmethod
    def _client(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if not value:
            return None
        if not _GUID.match(value):
            raise _invalid(
                f"`{value}` is not an application (client) id",
                "use the GUID shown as Application (client) ID on the app registration's Overview page",
            )
        return value

    @field_validator("certificate_thumbprint", mode="before")
    @classmethod
    def _thumbprint(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        # The portal and certmgr show it with spaces or colons; MSAL wants plain hex.
        cleaned = re.sub(r"[\s:]", "", value).upper()
        if not cleaned:
            return None
        if not _HEX.match(cleaned) or len(cleaned) != 40:
            hint = "copy the Thumbprint column of Certificates & secrets on the app registration"
            if _HEX.match(cleaned) and len(cleaned) == 64:
                hint = "this is a SHA-256 thumbprint; give the SHA-1 one (40 hex digits) or omit it"
            raise _invalid("the certificate thumbprint must be 40 hexadecimal digits (SHA-1)", hint)
        return cleaned

    @field_validator("authority_host", mode="before")
    @classmethod
    def _authority(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip().rstrip("/")
        if not text:
            return None
        if "://" in text:
            parts = urlsplit(text)
            if parts.scheme.lower() != "https":
                raise _invalid(f"`{text}` must use https", "e.g. login.microsoftonline.us")
            if parts.path.strip("/"):
                raise _invalid(
                    f"`{text}` includes a path", "give only the host; the tenant comes from auth.tenant_id"
                )
            text = parts.netloc
        if not _DOMAIN.match(text.split(":")[0]):
            raise _invalid(f"`{text}` is not a host name", "e.g. login.microsoftonline.com")
        return text.lower()

    @property
    def authority(self) -> str | None:
        """The Entra authority URL ``https://{authority_host}/{tenant_id}``, when both are known."""
        if not (self.tenant_id and self.authority_host):
            return None
        return f"https://{self.authority_host}/{self.tenant_id}"


class HttpSettings(_Section):
    """The retry policy shared by every Web API call."""

    retry_budget_seconds: float = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="Give up retrying a request after this many seconds in total.",
    )
    max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts per request, the first included."
    )


class MirrorSettings(_Section):
    """Where the local SQLite mirror lives."""

    path: Path = Field(default=Path(".dvsync/mirror.sqlite"), description="SQLite file of the mirror.")


class MappingsSettings(_Section):
    """Where the consultant's mapping files are."""

    dir: Path = Field(default=Path("mappings"), description="Directory of mappings/<table>.toml files.")


class SyncSettings(_Section):
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
        value = _split_list(value)
        if isinstance(value, list):
            return [v.strip().lower() if isinstance(v, str) else v for v in value]
        return value


def _check_job_names(names: list[str]) -> list[str]:
    for name in names:
        if name not in KNOWN_JOBS:
            guess = closest(name, KNOWN_JOBS, n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise _invalid(f"unknown job `{name}`", f"{hint}known jobs: {', '.join(KNOWN_JOBS)}")
    if len(set(names)) != len(names):
        raise _invalid("a job is listed twice", "list each job once")
    return names


def _job_names_raw(value: Any) -> Any:
    value = _split_list(value)
    if isinstance(value, list):
        return [_normalise_choice(v) for v in value]
    return value


# A list of job names as the consultant types it (TOML list, JSON list or "scoring, rfm"),
# normalised and checked against KNOWN_JOBS; used by [jobs] enabled and every schedule set.
JobNames = Annotated[list[str], NoDecode, BeforeValidator(_job_names_raw), AfterValidator(_check_job_names)]


class JobsSettings(_Section):
    """Which analytics jobs run."""

    enabled: JobNames = Field(
        default_factory=lambda: list(KNOWN_JOBS), description="Jobs run by `dvsync run`, in this order."
    )


class WritebackSettings(_Section):
    """How results are written back to Dataverse."""

    enabled: bool = Field(
        default=True, description="Write results back at all (false: compute and mirror only)."
    )
    dry_run: bool = Field(default=False, description="Plan and report the writes without sending them.")
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
                raise _invalid(
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
                raise _invalid(
                    f"`{value}` is not a valid customization prefix",
                    "2 to 8 letters or digits, starting with a letter, not `mscrm`",
                )
        return value


class ScheduleSet(_Section):
    """One scheduled run: a cron expression and the jobs it runs (after a sync)."""

    cron: str = Field(description="Five-field cron expression, e.g. '0 2 * * *' (02:00 daily).")
    jobs: JobNames = Field(default_factory=list, description="Jobs this run executes; empty: sync only.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        value = " ".join(value.split())
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise _invalid(
                f"`{value}` is not a five-field cron expression",
                "minute hour day-of-month month day-of-week, e.g. '*/30 * * * *' or '0 2 * * *'",
            )
        return value


# The default runs: scores and duplicates stay fresh during the day; the order-history models, which
# change slowly and cost more, run at night.
DEFAULT_SCHEDULE_SETS: dict[str, dict[str, Any]] = {
    "frequent": {"cron": "*/30 * * * *", "jobs": ["scoring", "duplicates"]},
    "nightly": {"cron": "0 2 * * *", "jobs": ["rfm", "clv"]},
}


def _default_sets() -> dict[str, ScheduleSet]:
    return {name: ScheduleSet(**spec) for name, spec in DEFAULT_SCHEDULE_SETS.items()}


class ScheduleSettings(_Section):
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
            raise _invalid(
                f"unknown time zone `{value}`", "use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("sets")
    @classmethod
    def _set_names(cls, value: dict[str, ScheduleSet]) -> dict[str, ScheduleSet]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise _invalid(f"`{name}` is not a usable schedule set name", "use letters, digits, _ and -")
        return value


with warnings.catch_warnings():
    # The contract names the key `logging.json`; a field called `json` shadows pydantic's deprecated
    # BaseModel.json() method, which nothing here uses.
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class LoggingSettings(_Section):
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
                    raise _invalid(f"unknown log level `{value}`", f"use one of {', '.join(LOG_LEVELS)}")
            return value


def env_var_name(path: tuple[str, ...]) -> str:
    """Return the environment variable that sets the key at ``path`` (``DVSYNC__AUTH__TENANT_ID``)."""
    return ENV_PREFIX + "__".join(p.upper() for p in path)


@dataclass
class _LoadContext:
    env: Mapping[str, str]
    doc: TomlFile | None


_CONTEXT: ContextVar[_LoadContext | None] = ContextVar("dvsync_settings_context", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items() if v != ""}


class _TomlSource(PydanticBaseSettingsSource):
    """The already-parsed config.toml (parsed once, with line numbers, by connector.tomlfile)."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


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
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

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
        context = _CONTEXT.get()
        env = context.env if context else os.environ
        sources: list[PydanticBaseSettingsSource] = [init_settings, _MappingEnvSource(settings_cls, env)]
        data = context.doc.data if context and context.doc is not None else {}
        if data:
            sources.append(_TomlSource(settings_cls, data))
        schedule = data.get("schedule")
        if not (isinstance(schedule, dict) and "sets" in schedule):
            # The default sets as the lowest source, so DVSYNC__SCHEDULE__SETS__NIGHTLY__CRON changes
            # the nightly cron and keeps its jobs; sets defined in the file replace them instead.
            sources.append(_TomlSource(settings_cls, {"schedule": {"sets": DEFAULT_SCHEDULE_SETS}}))
        return tuple(sources)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        auth = self.auth
        if auth.authority_host is None:
            cloud = (
                cloud_for_host(urlsplit(self.dataverse.url).hostname or "") if self.dataverse.url else None
            )
            auth.authority_host = cloud.authority_host if cloud else DEFAULT_AUTHORITY_HOST
        if auth.mode in MSAL_MODES:
            mode = f"auth.mode = {auth.mode}"
            if not self.dataverse.url:
                raise _invalid(
                    f"{mode} needs the environment URL (the token's scope)",
                    "set url under [dataverse] (or DVSYNC__DATAVERSE__URL), e.g. https://contoso.crm.dynamics.com",
                    key="dataverse.url",
                )
            if not auth.tenant_id:
                raise _invalid(
                    f"{mode} needs the directory (tenant) id",
                    "set tenant_id under [auth] (or DVSYNC__AUTH__TENANT_ID): Entra admin center > Overview",
                    key="auth.tenant_id",
                )
            if not auth.client_id:
                raise _invalid(
                    f"{mode} needs the application (client) id",
                    "set client_id under [auth] (or DVSYNC__AUTH__CLIENT_ID): the app registration's "
                    "Application (client) ID",
                    key="auth.client_id",
                )
            if auth.mode != "device_code" and auth.tenant_id.lower() == "organizations":
                raise _invalid(
                    f"{mode} needs a specific tenant, not `organizations`",
                    "use your directory (tenant) id",
                    key="auth.tenant_id",
                )
            if auth.mode == "certificate" and auth.certificate_path is None:
                raise _invalid(
                    "auth.mode = certificate needs the certificate file",
                    "set certificate_path under [auth] to a PEM (key + certificate) or .pfx file",
                    key="auth.certificate_path",
                )
        # MSAL settings without a token under the default mode almost always mean a forgotten mode.
        if auth.mode == "token" and auth.token is None:
            for key, value in (
                ("client_secret", auth.client_secret),
                ("certificate_path", auth.certificate_path),
                ("client_id", auth.client_id),
            ):
                if value is not None:
                    raise _invalid(
                        f"auth.{key} is set but auth.mode is `token` (the default) and no token is given",
                        'set mode = "client_secret", "certificate" or "device_code" under [auth]',
                        key="auth.mode",
                    )
        return self


class SettingsError(ConfigError):
    """A ConfigError for settings, which can also point at an environment variable.

    Attributes:
        env_var: the variable the bad value came from, when it came from the environment.
        also: further problems found in the same load, shown after the first one.
    """

    def __init__(self, message: str, *, env_var: str | None = None, **kwargs: Any) -> None:
        self.env_var = env_var
        self.also: list[SettingsError] = []
        super().__init__(message, **kwargs)

    def _render(self) -> str:
        text = super()._render()
        if self.env_var:
            text = f"environment variable {self.env_var} {text}"
        for other in self.also:
            text += f"\n  also: {other}"
        return text


def _model_for(annotation: Any) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _dict_model(annotation: Any) -> type[BaseModel] | None:
    origin = getattr(annotation, "__origin__", None)
    if origin is dict:
        args = getattr(annotation, "__args__", ())
        return _model_for(args[1]) if len(args) == 2 else None
    return None


def _unknown_keys(
    model: type[BaseModel], data: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple, list]]:
    """Yield (path, suggestions) for every key in ``data`` that ``model`` has no field for."""
    if not isinstance(data, dict):
        return
    fields = model.model_fields
    for key, value in data.items():
        here = (*path, str(key))
        if key not in fields:
            yield here, closest(str(key), fields)
            continue
        annotation = fields[key].annotation
        sub = _model_for(annotation)
        if sub is not None:
            yield from _unknown_keys(sub, value, here)
        elif (item_model := _dict_model(annotation)) is not None and isinstance(value, dict):
            for name, item in value.items():
                yield from _unknown_keys(item_model, item, (*here, str(name)))


def _misplaced_hint(key_path: tuple[str, ...]) -> str:
    """Say which section a key belongs to when it was written under the wrong header (or none)."""
    name = key_path[-1]
    homes = [
        section
        for section, field in Settings.model_fields.items()
        if (model := _model_for(field.annotation)) is not None and name in model.model_fields
    ]
    if homes and len(key_path) <= 2:
        return f"`{name}` belongs under [{homes[0]}]; move it below that header"
    return "remove it or check its spelling"


def _env_tree(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Our variables as a nested dict of lower-case keys, and each key path's variable name."""
    tree: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX) or value == "":
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        names[path] = name
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return tree, names


class _Locator:
    """Says where a key's effective value came from, to point the user at the right place."""

    def __init__(self, doc: TomlFile | None, env_names: dict[tuple[str, ...], str]) -> None:
        self.doc = doc
        self.env_names = env_names

    def env_var(self, path: tuple[str, ...]) -> str | None:
        lowered = tuple(p.lower() for p in path)
        # A variable may set the key itself or a whole table above it as JSON.
        for length in range(len(lowered), 0, -1):
            if lowered[:length] in self.env_names:
                return self.env_names[lowered[:length]]
        return None

    def error(self, path: tuple[str, ...], message: str, hint: str | None) -> SettingsError:
        dotted = ".".join(path)
        env_var = self.env_var(path)
        if env_var:
            return SettingsError(message, env_var=env_var, key=dotted, hint=hint)
        if self.doc is not None:
            # Either the bad value is in the file, or the fix (adding the key) belongs there.
            return SettingsError(
                message, file=self.doc.path, line=self.doc.line_of(path), key=dotted, hint=hint
            )
        return SettingsError(message, key=dotted, hint=hint)


_SECRET_KEYS = frozenset({"client_secret", "certificate_passphrase", "token"})


def _from_validation_error(exc: ValidationError, locator: _Locator) -> SettingsError:
    """Turn pydantic's report into one clear SettingsError (the first problem, in file order)."""
    problems: list[SettingsError] = []
    for item in exc.errors(include_url=False):
        path = tuple(str(p) for p in item["loc"])
        ctx = item.get("ctx") or {}
        if item["type"] == "dvsync":
            message, hint = ctx["message"], ctx.get("hint")
            if ctx.get("key"):
                path = tuple(ctx["key"].split("."))
        elif item["type"] == "missing":
            message, hint = "this key is required", f"add `{path[-1]}`"
        elif item["type"] == "extra_forbidden":
            message, hint = "unknown key", "remove it or check its spelling"
        else:
            message, hint = item["msg"], None
            if path and path[-1] not in _SECRET_KEYS and not isinstance(item.get("input"), dict | list):
                # Show what was given, except for secrets.
                message = f"{message} (got {item.get('input')!r})"
            elif path and path[-1] in _SECRET_KEYS:
                message = item["msg"].split(",")[0]
        problems.append(locator.error(path, message, hint))
    problems.sort(key=lambda p: (p.env_var is None, p.line or 0))
    first = problems[0]
    first.also = problems[1:]
    first.args = (first._render(),)
    return first


def _config_path(config_path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if config_path is not None:
        return Path(config_path).expanduser()
    if env.get(CONFIG_ENV_VAR):
        return Path(env[CONFIG_ENV_VAR]).expanduser()
    default = Path("config.toml")
    return default if default.is_file() else None


# (section, key) of every path-valued setting, resolved after validation.
_PATH_KEYS: tuple[tuple[str, str], ...] = (
    ("dataverse", "ca_bundle"),
    ("auth", "certificate_path"),
    ("auth", "token_cache_path"),
    ("mirror", "path"),
    ("mappings", "dir"),
)


def _resolve_paths(settings: Settings, locator: _Locator) -> None:
    base = locator.doc.path.parent.resolve() if locator.doc is not None else Path.cwd()
    for section, key in _PATH_KEYS:
        model = getattr(settings, section)
        value: Path | None = getattr(model, key)
        if value is None:
            continue
        value = value.expanduser()
        if not value.is_absolute():
            from_env = locator.env_var((section, key)) is not None
            value = (Path.cwd() if from_env else base) / value
        setattr(model, key, value)


def _check_readable_file(settings: Settings, locator: _Locator, section: str, key: str, what: str) -> None:
    path: Path | None = getattr(getattr(settings, section), key)
    if path is None:
        return
    if not path.exists():
        raise locator.error((section, key), f"{what} `{path}` does not exist", "check the path")
    if not path.is_file():
        raise locator.error((section, key), f"{what} `{path}` is not a file", "point it at the file itself")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise locator.error(
            (section, key),
            f"{what} `{path}` cannot be read ({exc.strerror or exc.__class__.__name__})",
            "check its permissions: the user running dvsync needs read access",
        ) from None


def load_settings(config_path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load dvsync's settings from ``config.toml`` and the environment, environment winning.

    Args:
        config_path: the config file; default ``$DVSYNC_CONFIG``, else ``./config.toml`` if it
            exists, else none (defaults only).
        env: the environment to read ``DVSYNC__*`` and ``DVSYNC_CONFIG`` from; default
            ``os.environ``.

    Returns:
        The validated settings, with relative paths made absolute.

    Raises:
        ConfigError: (a :class:`SettingsError`) naming the file and line or the environment
            variable, the key, what is wrong and how to fix it.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    path = _config_path(config_path, environ)
    doc = load_toml(path) if path is not None else None
    env_data, env_names = _env_tree(environ)
    locator = _Locator(doc, env_names)

    if doc is not None:
        for key_path, suggestions in _unknown_keys(Settings, doc.data):
            hint = f"did you mean `{suggestions[0]}`?" if suggestions else _misplaced_hint(key_path)
            raise SettingsError(
                f"unknown key `{key_path[-1]}`",
                file=doc.path,
                line=doc.line_of(key_path),
                key=".".join(key_path),
                hint=hint,
            )
    for key_path, suggestions in _unknown_keys(Settings, env_data):
        name = env_names.get(key_path) or env_var_name(key_path)
        hint = (
            f"did you mean {env_var_name((*key_path[:-1], suggestions[0]))}?"
            if suggestions
            else "remove it or check its spelling"
        )
        raise SettingsError("unknown setting", env_var=name, key=".".join(key_path), hint=hint)

    token = _CONTEXT.set(_LoadContext(env=environ, doc=doc))
    try:
        settings = Settings()
    except ValidationError as exc:
        raise _from_validation_error(exc, locator) from None
    except PydanticSettingsError as exc:  # 'error parsing value for field "auth"': bad JSON in a variable
        field = re.search(r'field "([^"]+)"', str(exc))
        names = [n for p, n in env_names.items() if field and p[-1] == field.group(1).lower()]
        raise SettingsError(
            "this value is not valid JSON",
            env_var=names[0] if names else None,
            key=field.group(1) if field else None,
            hint="a whole table in one variable must be a JSON object; simpler: one variable per key, "
            "e.g. DVSYNC__AUTH__MODE=token",
        ) from None
    finally:
        _CONTEXT.reset(token)

    _resolve_paths(settings, locator)
    _check_readable_file(settings, locator, "auth", "certificate_path", "certificate file")
    _check_readable_file(settings, locator, "dataverse", "ca_bundle", "CA bundle")
    return settings
