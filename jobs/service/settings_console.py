"""The ``[console]`` section: where the admin console listens and who may sign in.

Kept beside :mod:`jobs.service.settings` (which only adds the field) so the console's options do
not grow the shared settings module. The console itself lives in :mod:`jobs.console`.

Sign-in rules (checked here, so a bad combination stops at start-up with file:line):

* ``auth = "token"`` (default): a one-time admin token is generated when the console starts and
  printed on its terminal; it is never written anywhere.
* ``auth = "entra"``: the organisation's Entra ID, OAuth 2.0 authorization-code flow through MSAL;
  ``allowed_users`` (user principal names) and/or ``allowed_groups`` (group object ids, from the
  ID token's ``groups`` claim) say who may use the console.
* ``auth = "none"``: no sign-in, only allowed on a loopback address (127.0.0.1, ::1, localhost);
  any other bind must sign people in.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from connector.settings import SettingsSection, invalid_setting, normalise_choice, split_list

__all__ = ["ConsoleSettings", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses no other machine can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ConsoleSettings(SettingsSection):
    """The web console (`dvsync console`, `dvsync schedule --console`)."""

    host: str = Field(default="127.0.0.1", description="Address to listen on; loopback unless you sign in.")
    port: int = Field(default=8766, ge=0, le=65535, description="TCP port (0: any free port).")
    auth: Annotated[Literal["token", "entra", "none"], BeforeValidator(normalise_choice)] = Field(
        default="token",
        description="token (one-time admin token printed at start) | entra (Entra ID sign-in) | "
        "none (loopback only).",
    )
    session_minutes: int = Field(
        default=480, ge=5, le=7 * 24 * 60, description="A session ends this long after sign-in."
    )
    idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A session unused this long ends (sign in again)."
    )
    public_url: str | None = Field(
        default=None,
        description="The URL people open (behind a proxy: https://dvsync.contoso.com); Entra's "
        "redirect URI is <public_url>/auth/callback. Default: http://<host>:<port>.",
    )
    tenant_id: str | None = Field(
        default=None, description="Entra tenant for sign-in (default: auth.tenant_id)."
    )
    client_id: str | None = Field(
        default=None, description="App registration for sign-in (default: auth.client_id)."
    )
    client_secret: SecretStr | None = Field(
        default=None,
        description="Its client secret; from DVSYNC__CONSOLE__CLIENT_SECRET (default: auth.client_secret).",
    )
    allowed_users: Annotated[list[str], BeforeValidator(split_list)] = Field(
        default_factory=list, description="User principal names allowed in (auth = entra)."
    )
    allowed_groups: Annotated[list[str], BeforeValidator(split_list)] = Field(
        default_factory=list,
        description="Entra group object ids whose members are allowed in (auth = entra).",
    )
    acquisition_cost: dict[str, float] = Field(
        default_factory=dict,
        description="Cost to acquire one customer per lead source, e.g. {Web = 120.0, Partner = 300.0}; "
        "the Customers page shows CLV:CAC for these sources.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")):
            raise invalid_setting(f"`{value}` is not an http(s) URL", "write e.g. https://dvsync.contoso.com")
        return text

    @field_validator("acquisition_cost")
    @classmethod
    def _costs(cls, value: dict[str, float]) -> dict[str, float]:
        for source, cost in value.items():
            if not cost > 0:
                raise invalid_setting(
                    f"acquisition cost of `{source}` is {cost}",
                    "give a positive amount per customer acquired",
                )
        return value

    @model_validator(mode="after")
    def _sign_in(self) -> ConsoleSettings:
        if self.auth == "none" and not is_loopback(self.host):
            raise invalid_setting(
                f'auth = "none" on {self.host}: a console reachable from other machines must sign people in',
                'use auth = "token" or auth = "entra", or host = "127.0.0.1"',
                key="console.auth",
            )
        if self.auth == "entra" and not (self.allowed_users or self.allowed_groups):
            raise invalid_setting(
                "Entra sign-in needs to know who is allowed in",
                'set allowed_users = ["admin@contoso.com"] or allowed_groups = ["<group object id>"]',
                key="console.allowed_users",
            )
        return self

    def url(self, port: int | None = None) -> str:
        """The URL to open (``public_url``, else built from host and the bound port)."""
        if self.public_url:
            return self.public_url
        host = self.host if ":" not in self.host else f"[{self.host}]"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{port if port is not None else self.port}"
