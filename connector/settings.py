"""The connector's settings: where the Dataverse environment is, how to sign in, how to retry.

These are the ``[dataverse]``, ``[auth]`` and ``[http]`` sections of dvsync's configuration; the
whole typed settings object that holds them (and is read from ``config.toml`` and
``DVSYNC__SECTION__KEY`` variables) is :class:`jobs.service.settings.Settings`. Secrets (client
secret, certificate passphrase, static token) are :class:`pydantic.SecretStr`: never required in the
file, never shown in ``repr``/``str`` and never echoed in an error.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)
from pydantic_core import PydanticCustomError

from core.errors import ConfigError
from core.tomlfile import closest

__all__ = [
    "AUTH_MODES",
    "CLOUDS",
    "ENV_PREFIX",
    "LOOPBACK_HOSTS",
    "MSAL_MODES",
    "AuthSettings",
    "Cloud",
    "ConnectionSettings",
    "DataverseSettings",
    "HttpSettings",
    "SettingsSection",
    "check_sign_in",
    "cloud_for_host",
    "env_var_name",
    "invalid_setting",
    "is_loopback_host",
    "validate_environment_url",
]

ENV_PREFIX = "DVSYNC__"
AUTH_MODES: tuple[str, ...] = ("client_secret", "certificate", "device_code", "token")
MSAL_MODES: frozenset[str] = frozenset({"client_secret", "certificate", "device_code"})
LOOPBACK_HOSTS: frozenset[str] = frozenset({"127.0.0.1", "localhost", "::1"})


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


def invalid_setting(message: str, hint: str | None = None, key: str | None = None) -> PydanticCustomError:
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
        raise invalid_setting(
            f"`{text}` is not a URL", f"write the environment URL with its scheme, e.g. {example}"
        )
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise invalid_setting(f"`{text}` is not a valid URL ({exc})", f"e.g. {example}") from None
    if parts.username or parts.password:
        # Never echo this URL: its user-info part may be a password.
        raise invalid_setting(
            "the environment URL must not contain a user name or password",
            "credentials go in the [auth] section or DVSYNC__AUTH__* environment variables",
        )
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise invalid_setting(f"`{text}` has no host name", f"e.g. {example}")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise invalid_setting(
            f"`{text}` uses `{parts.scheme}://`", f"Dataverse is reached over https, e.g. {example}"
        )
    if scheme == "http" and not is_loopback_host(host):
        raise invalid_setting(
            f"`{text}` uses plain http, which would send the bearer token unencrypted",
            "use https://; plain http is allowed only for a loopback host (127.0.0.1, localhost, ::1), "
            "i.e. the sandbox",
        )
    path = parts.path.rstrip("/")
    if path.lower().startswith("/api/data"):
        raise invalid_setting(
            f"`{text}` is the Web API address, not the environment URL",
            f"give only `{scheme}://{parts.netloc}`; dvsync adds /api/data/<version>/ itself",
        )
    if path or parts.query or parts.fragment:
        raise invalid_setting(
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
            raise invalid_setting(
                f"`{host}` has no environment name in front of it", f"e.g. https://contoso.{host}; {find_url}"
            )
        if cloud_for_host(host) is None:
            hint = find_url
            if "operations" in labels:
                hint = f"this looks like a Finance & Operations URL; dvsync needs the Dataverse URL ({hint})"
            raise invalid_setting(f"`{host}` is not a Dataverse environment host", hint)
        return
    suggestion = closest(domain, _DATAVERSE_DOMAINS, n=1)
    if suggestion and suggestion[0] != domain and _similar(domain, suggestion[0]):
        fixed = ".".join([*labels[:-2], suggestion[0]])
        raise invalid_setting(f"`{host}` is not a Dataverse host", f"did you mean `{fixed}`?")


def _similar(a: str, b: str) -> bool:
    # Stricter than closest()'s default: `contoso.com` must not look like a typo of `dynamics.com`.
    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def normalise_choice(value: Any) -> Any:
    return value.strip().lower().replace("-", "_") if isinstance(value, str) else value


def split_list(value: Any) -> Any:
    """Accept a list, a JSON list or a comma-separated string (the form people type in a shell)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise invalid_setting(
                f"`{text}` is not a valid JSON list", 'write e.g. ["rfm", "clv"] or rfm,clv'
            ) from None
    return [item.strip() for item in text.split(",") if item.strip()]


class SettingsSection(BaseModel):
    # Unknown keys are reported (with "did you mean") before validation; forbid is the backstop.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataverseSettings(SettingsSection):
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
            raise invalid_setting(f"`{value}` is not a Web API version", 'write it like "v9.2"')
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


class AuthSettings(SettingsSection):
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
        value = normalise_choice(value)
        if isinstance(value, str) and value not in AUTH_MODES:
            guess = closest(value, AUTH_MODES, n=1)
            hint = f"did you mean `{guess[0]}`? " if guess else ""
            raise invalid_setting(
                f"unknown auth mode `{value}`", f"{hint}valid modes: {', '.join(AUTH_MODES)}"
            )
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
            raise invalid_setting(
                f"tenant `{value}` cannot sign in to Dataverse",
                "use your directory (tenant) id from Entra admin center > Overview, or a verified domain "
                "such as contoso.onmicrosoft.com",
            )
        if not (_GUID.match(value) or _DOMAIN.match(value) or value.lower() == "organizations"):
            raise invalid_setting(
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
            raise invalid_setting(
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
            raise invalid_setting("the certificate thumbprint must be 40 hexadecimal digits (SHA-1)", hint)
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
                raise invalid_setting(f"`{text}` must use https", "e.g. login.microsoftonline.us")
            if parts.path.strip("/"):
                raise invalid_setting(
                    f"`{text}` includes a path", "give only the host; the tenant comes from auth.tenant_id"
                )
            text = parts.netloc
        if not _DOMAIN.match(text.split(":")[0]):
            raise invalid_setting(f"`{text}` is not a host name", "e.g. login.microsoftonline.com")
        return text.lower()

    @property
    def authority(self) -> str | None:
        """The Entra authority URL ``https://{authority_host}/{tenant_id}``, when both are known."""
        if not (self.tenant_id and self.authority_host):
            return None
        return f"https://{self.authority_host}/{self.tenant_id}"


class HttpSettings(SettingsSection):
    """The retry policy shared by every Web API call."""

    retry_budget_seconds: float = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="Give up retrying a request after this many seconds in total.",
    )
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Failed attempts per request, the first included; 429s do not count "
        "(the time budget bounds them).",
    )


def env_var_name(path: tuple[str, ...]) -> str:
    """Return the environment variable that sets the key at ``path`` (``DVSYNC__AUTH__TENANT_ID``)."""
    return ENV_PREFIX + "__".join(p.upper() for p in path)


def check_sign_in(dataverse: DataverseSettings, auth: AuthSettings) -> None:
    """Check that the sign-in settings fit together, and fill in the Entra host from the URL's cloud.

    Raises:
        PydanticCustomError: the first inconsistency, naming the key to set and how.
    """
    if auth.authority_host is None:
        cloud = cloud_for_host(urlsplit(dataverse.url).hostname or "") if dataverse.url else None
        auth.authority_host = cloud.authority_host if cloud else DEFAULT_AUTHORITY_HOST
    if auth.mode in MSAL_MODES:
        mode = f"auth.mode = {auth.mode}"
        if not dataverse.url:
            raise invalid_setting(
                f"{mode} needs the environment URL (the token's scope)",
                "set url under [dataverse] (or DVSYNC__DATAVERSE__URL), e.g. https://contoso.crm.dynamics.com",
                key="dataverse.url",
            )
        if not auth.tenant_id:
            raise invalid_setting(
                f"{mode} needs the directory (tenant) id",
                "set tenant_id under [auth] (or DVSYNC__AUTH__TENANT_ID): Entra admin center > Overview",
                key="auth.tenant_id",
            )
        if not auth.client_id:
            raise invalid_setting(
                f"{mode} needs the application (client) id",
                "set client_id under [auth] (or DVSYNC__AUTH__CLIENT_ID): the app registration's "
                "Application (client) ID",
                key="auth.client_id",
            )
        if auth.mode != "device_code" and auth.tenant_id.lower() == "organizations":
            raise invalid_setting(
                f"{mode} needs a specific tenant, not `organizations`",
                "use your directory (tenant) id",
                key="auth.tenant_id",
            )
        if auth.mode == "certificate" and auth.certificate_path is None:
            raise invalid_setting(
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
                raise invalid_setting(
                    f"auth.{key} is set but auth.mode is `token` (the default) and no token is given",
                    'set mode = "client_secret", "certificate" or "device_code" under [auth]',
                    key="auth.mode",
                )


class ConnectionSettings(Protocol):
    """What the connector reads from dvsync's settings: any object with these three sections."""

    @property
    def dataverse(self) -> DataverseSettings: ...

    @property
    def auth(self) -> AuthSettings: ...

    @property
    def http(self) -> HttpSettings: ...
