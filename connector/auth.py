"""Bearer tokens for Dataverse: MSAL client secret, certificate and device code, or a static token.

A token provider is any callable ``provider() -> str``. The providers built here also have
``provider.force_refresh()``, which drops the cached token so the next call acquires a new one;
the HTTP layer calls it on a 401 and retries once. Build one from settings with
:func:`token_provider_from_settings`.

MSAL keeps tokens in its application's cache, so the application must live as long as the
process: :func:`msal_app` keeps one per (kind, authority, client id, credential), and every
provider for the same app registration shares it. App-only tokens are cached in memory (MSAL
serves them until 5 minutes before expiry); the device-code flow's cache (access and refresh
tokens of a person) is persisted to a file only its owner can read, so an admin signs in once.

Scopes (Microsoft Learn, "Use OAuth authentication with Microsoft Dataverse"): a confidential
client asks for ``{environment_url}/.default``; a public client (device code) for
``{environment_url}/user_impersonation``.

No token, secret, passphrase or private key is ever formatted into a log line, an exception or a
``repr``; MSAL's error descriptions are scrubbed of the provider's own secrets before they are
shown, as a second line of defence.

Kept as one module on purpose: the four sign-in modes share one MSAL application, its token
cache and the translation of MSAL's errors, and each mode's code needs the others' details.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

import msal
import msal.exceptions
import requests

from connector.errors import AuthError, TransportError
from connector.settings import AuthSettings, ConnectionSettings, env_var_name
from core.errors import ConfigError

__all__ = [
    "AADSTS_HINTS",
    "APPLICATION_USER_HINT",
    "DeviceCodeProvider",
    "FileTokenCache",
    "MsalClientCredentialsProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "auth_error_from_result",
    "certificate_credential",
    "default_token_cache_path",
    "msal_app",
    "reset_msal_apps",
    "token_provider_from_settings",
]

logger = logging.getLogger(__name__)

# For the HTTP layer: Entra issued a token, but Dataverse answers 401/403 because the app is not an
# application user of this environment (or has no security role there). Microsoft Learn: "Manage
# application users in the Power Platform admin center".
APPLICATION_USER_HINT = (
    "the token was accepted by Microsoft Entra ID but refused by Dataverse: add the app registration "
    "as an application user of this environment (Power Platform admin center > Environments > your "
    "environment > Settings > Users + permissions > Application users > New app user) and give it a "
    "security role that can read and write the mapped tables"
)

# AADSTS codes (Microsoft Learn, "Microsoft Entra authentication and authorization error codes")
# mapped to what the admin has to do.
AADSTS_HINTS: dict[str, str] = {
    "AADSTS7000215": "the client secret is wrong: copy the secret's Value (not its Secret ID) from the app "
    "registration's Certificates & secrets page into DVSYNC__AUTH__CLIENT_SECRET",
    "AADSTS7000222": "the client secret has expired: create a new one under Certificates & secrets and "
    "update DVSYNC__AUTH__CLIENT_SECRET",
    "AADSTS700016": "no app with this client id exists in this tenant: check auth.client_id (Application "
    "(client) ID on the app registration's Overview) and that auth.tenant_id is the tenant it was "
    "registered in",
    "AADSTS90002": "the tenant was not found: check auth.tenant_id (Directory (tenant) ID in Entra admin "
    "center > Overview) and that auth.authority_host is the right cloud",
    "AADSTS900023": "auth.tenant_id is neither a tenant GUID nor a verified domain: use the Directory "
    "(tenant) ID from Entra admin center > Overview",
    "AADSTS90023": "the tenant identifier is not valid for this request: use the Directory (tenant) ID",
    "AADSTS700027": "the certificate was not accepted: upload its public part (.cer/.pem) under "
    "Certificates & secrets, check it has not expired, and that the thumbprint (if you set one) is that "
    "certificate's SHA-1 thumbprint",
    "AADSTS700024": "the client assertion is outside its validity window: check this machine's clock",
    "AADSTS500011": "Dataverse is not known under this URL in the tenant: check dataverse.url is the "
    "environment URL and the environment belongs to auth.tenant_id's tenant",
    "AADSTS500113": "no reply address is registered; device-code sign-in needs 'Allow public client "
    "flows' set to Yes on the app registration's Authentication page",
    "AADSTS7000218": "device-code sign-in needs 'Allow public client flows' set to Yes on the app "
    "registration's Authentication page",
    "AADSTS65001": "consent is missing: grant admin consent for the Dynamics CRM user_impersonation "
    "permission on the app registration's API permissions page",
    "AADSTS50076": "multi-factor authentication is required: use the device-code mode, or an app "
    "registration with client secret or certificate",
    "AADSTS53003": "a Conditional Access policy blocked the sign-in: ask your Entra administrator",
    "AADSTS70020": "the device code expired before the sign-in was completed: run again and finish "
    "signing in within the time shown",
    "AADSTS70016": "the sign-in was not completed yet",
    "AADSTS50173": "the signed-in session was revoked (password change?): delete the token cache file "
    "and sign in again",
    "AADSTS700082": "the saved sign-in expired after inactivity: sign in again",
}
_AADSTS = re.compile(r"\bAADSTS(\d{5,7})\b")
# Entra appends diagnostics to every description; they add noise, not meaning.
_DIAGNOSTICS = re.compile(r"\s*(Trace ID|Correlation ID|Timestamp):.*$", re.DOTALL)


@runtime_checkable
class TokenProvider(Protocol):
    """A callable returning a bearer token; providers built here also have ``force_refresh()``."""

    def __call__(self) -> str:
        """Return a valid bearer token (without the ``Bearer`` prefix)."""
        ...


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def auth_error_from_result(result: dict[str, Any], *, secrets: Iterable[str] = ()) -> AuthError:
    """Turn an MSAL error dictionary into an :class:`AuthError` with its AADSTS code and a hint.

    Args:
        result: what MSAL returned instead of a token (``error``, ``error_description``,
            ``error_codes``, ``correlation_id``).
        secrets: values that must not appear in the error (scrubbed from the description).

    Returns:
        The error to raise.
    """
    error = str(result.get("error") or "unknown_error")
    raw_description = str(result.get("error_description") or "")
    codes = result.get("error_codes") or []
    code: str | None = None
    if codes:
        code = f"AADSTS{codes[0]}"
    elif match := _AADSTS.search(raw_description):
        code = f"AADSTS{match.group(1)}"
    description = _DIAGNOSTICS.sub("", raw_description).strip()
    # The code is shown on its own; "AADSTS7000215: Invalid client secret..." would repeat it.
    description = _redact(re.sub(r"^AADSTS\d+:\s*", "", description), secrets)
    hint = AADSTS_HINTS.get(code or "")
    if hint is None and error == "invalid_scope":
        hint = "check dataverse.url: the token scope is built from it"
    elif hint is None and error in ("invalid_client", "unauthorized_client"):
        hint = "check auth.client_id and the credential (secret or certificate) of the app registration"
    message = f"Microsoft Entra ID refused the token request ({error})"
    if description:
        message = f"{message}: {description}"
    return AuthError(
        message,
        code=code,
        description=description or None,
        hint=hint,
        correlation_id=result.get("correlation_id"),
    )


def _error_from_exception(exc: Exception, authority: str, secrets: Iterable[str]) -> Exception:
    """Map what MSAL raises (not returns) to our tree: network trouble is retriable, the rest is auth."""
    if isinstance(exc, requests.RequestException):
        response = getattr(exc, "response", None)
        status = response.status_code if response is not None else None
        if response is None or status is None or status >= 500 or status == 429:
            return TransportError(
                f"could not reach Microsoft Entra ID at {authority} ({exc.__class__.__name__})",
                status=status,
            )
    if isinstance(exc, msal.exceptions.MsalServiceError):
        # MSAL raises "HTTP Error: 503" for a 5xx from the token or discovery endpoint.
        match = re.search(r"HTTP Error: (\d{3})", str(exc))
        status = int(match.group(1)) if match else None
        if status is None or status >= 500 or status == 429:
            return TransportError(
                f"Microsoft Entra ID at {authority} is unavailable (HTTP {status or 'error'}); try later",
                status=status,
            )
    if isinstance(exc, json.JSONDecodeError):
        return AuthError(
            f"the answer from Microsoft Entra ID at {authority} was not JSON",
            hint="a proxy or captive portal may be answering instead; check HTTPS_PROXY and "
            "dataverse.ca_bundle, or set auth.authority_host if you use a national cloud",
        )
    # MSAL re-raises a failed tenant discovery as a ValueError whose context holds the 400 body.
    texts = [str(exc)]
    if exc.__context__ is not None:
        texts.append(str(exc.__context__))
    joined = _redact(" ".join(texts), secrets)
    match = _AADSTS.search(joined)
    code = f"AADSTS{match.group(1)}" if match else None
    description = next((_DIAGNOSTICS.sub("", t).strip() for t in reversed(texts) if _AADSTS.search(t)), None)
    message = f"Microsoft Entra ID could not be used with authority {authority}"
    if description:
        message = f"{message}: {_redact(description, secrets)}"
    elif not code:
        message = f"{message}: {_redact(str(exc), secrets)}"
    hint = AADSTS_HINTS.get(code or "") or (
        "check auth.tenant_id and auth.authority_host" if "authority" in joined.lower() else None
    )
    return AuthError(message, code=code, description=description, hint=hint)


# What MSAL raises instead of returning an error dictionary: bad input or responses, network errors.
_MSAL_RAISES = (ValueError, requests.RequestException, msal.exceptions.MsalError)


# --- one MSAL application per process ------------------------------------------------------------

_APPS: dict[tuple[str, ...], msal.ClientApplication] = {}
_APPS_LOCK = threading.Lock()


def msal_app(
    kind: str,
    authority: str,
    client_id: str,
    *,
    credential: Any = None,
    credential_id: str = "",
    token_cache: msal.TokenCache | None = None,
    timeout: tuple[float, float] | None = None,
    verify: bool | str = True,
) -> msal.ClientApplication:
    """Return the process's MSAL application for this registration, creating it on first use.

    Args:
        kind: ``"confidential"`` or ``"public"``.
        authority: ``https://{authority_host}/{tenant}``.
        client_id: the application (client) id.
        credential: the client secret or certificate dict (confidential apps).
        credential_id: a digest naming the credential, so a rotated secret gets a new app.
        token_cache: the cache for a public app (persisted by the caller).
        timeout: (connect, read) seconds for MSAL's own HTTP calls.
        verify: TLS verification, or a CA bundle path.

    Raises:
        AuthError: the authority could not be validated (unknown tenant, wrong cloud).
        TransportError: Microsoft Entra ID could not be reached.
    """
    key = (kind, authority.lower(), client_id.lower(), credential_id)
    with _APPS_LOCK:
        app = _APPS.get(key)
        if app is not None:
            return app
        secrets = [credential] if isinstance(credential, str) else []
        try:
            if kind == "confidential":
                app = msal.ConfidentialClientApplication(
                    client_id,
                    client_credential=credential,
                    authority=authority,
                    timeout=timeout,
                    verify=verify,
                )
            else:
                app = msal.PublicClientApplication(
                    client_id, authority=authority, token_cache=token_cache, timeout=timeout, verify=verify
                )
        except _MSAL_RAISES as exc:
            raise _error_from_exception(exc, authority, secrets) from None
        _APPS[key] = app
        return app


def reset_msal_apps() -> None:
    """Forget every MSAL application (and so its in-memory tokens); for tests and credential rotation."""
    with _APPS_LOCK:
        _APPS.clear()


def _digest(*parts: str | bytes | None) -> str:
    """A short one-way name for a credential, used only as a dictionary key."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else (part or b""))
        sha.update(b"\0")
    return sha.hexdigest()[:16]


# --- providers -------------------------------------------------------------------------------------


class StaticTokenProvider:
    """Return one fixed bearer token (the sandbox's); ``force_refresh`` cannot renew it."""

    def __init__(self, token: str) -> None:
        """Keep the token.

        Args:
            token: the bearer token, without the ``Bearer`` prefix.

        Raises:
            ConfigError: the token is empty.
        """
        token = token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise ConfigError("the static token is empty", key="auth.token", hint=_token_hint())
        self._token = token

    def __call__(self) -> str:
        """Return the token."""
        return self._token

    def force_refresh(self) -> None:
        """Do nothing: a static token cannot be renewed (a 401 then surfaces to the caller)."""
        logger.warning("the static bearer token was refused; it cannot be renewed (auth.mode = token)")

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=***)"


class MsalClientCredentialsProvider:
    """App-only tokens (client secret or certificate) from one shared MSAL confidential client."""

    def __init__(
        self,
        *,
        authority: str,
        client_id: str,
        scope: str,
        credential: str | dict[str, Any],
        credential_id: str,
        timeout: tuple[float, float] | None = None,
        verify: bool | str = True,
        description: str = "client secret",
    ) -> None:
        """Prepare the provider; nothing is requested until the first call.

        Args:
            authority: ``https://{authority_host}/{tenant}``.
            client_id: the application (client) id.
            scope: ``{environment_url}/.default``.
            credential: the client secret, or MSAL's certificate dictionary.
            credential_id: a digest of the credential (keys the shared MSAL application).
            timeout: (connect, read) seconds for calls to Entra ID.
            verify: TLS verification or a CA bundle path.
            description: what the credential is, for repr and messages.
        """
        self.authority = authority
        self.client_id = client_id
        self.scope = scope
        self._credential = credential
        self._credential_id = credential_id
        self._timeout = timeout
        self._verify = verify
        self._description = description
        self._lock = threading.Lock()

    def _secrets(self) -> list[str]:
        if isinstance(self._credential, str):
            return [self._credential]
        return [
            v
            for k, v in self._credential.items()
            if k in ("passphrase", "private_key") and isinstance(v, str)
        ]

    def _app(self) -> msal.ConfidentialClientApplication:
        app = msal_app(
            "confidential",
            self.authority,
            self.client_id,
            credential=self._credential,
            credential_id=self._credential_id,
            timeout=self._timeout,
            verify=self._verify,
        )
        assert isinstance(app, msal.ConfidentialClientApplication)
        return app

    def __call__(self) -> str:
        """Return a token from MSAL's cache, or a new one from Entra ID.

        Raises:
            AuthError: Entra ID refused (code, description and hint attached).
            TransportError: Entra ID could not be reached.
        """
        with self._lock:
            app = self._app()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except _MSAL_RAISES as exc:
                raise _error_from_exception(exc, self.authority, self._secrets()) from None
        if result and "access_token" in result:
            return str(result["access_token"])
        raise auth_error_from_result(result or {"error": "no_result"}, secrets=self._secrets())

    def force_refresh(self) -> None:
        """Drop this app's cached tokens so the next call asks Entra ID for a new one."""
        with self._lock:
            app = self._app()
            try:
                app.remove_tokens_for_client()
            except _MSAL_RAISES as exc:
                raise _error_from_exception(exc, self.authority, self._secrets()) from None

    def __repr__(self) -> str:
        return (
            f"MsalClientCredentialsProvider(authority={self.authority!r}, client_id={self.client_id!r}, "
            f"scope={self.scope!r}, credential=<{self._description}>)"
        )


class FileTokenCache(msal.SerializableTokenCache):
    """MSAL's serializable cache, kept in a file only its owner can read or write.

    The file is created with mode 0600 inside a directory created with 0700, rewritten
    atomically (a temporary file in the same directory, then ``os.replace``) and only when MSAL
    changed the cache.
    """

    def __init__(self, path: str | Path) -> None:
        """Load the cache from ``path`` if it exists; an unreadable cache is ignored with a warning."""
        super().__init__()
        self.path = Path(path).expanduser()
        self._file_lock = threading.Lock()
        if not self.path.exists():
            return
        try:
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                # Someone loosened it (or copied it); tokens must stay private.
                os.chmod(self.path, 0o600)
                logger.warning("token cache %s was readable by others; set its mode to 0600", self.path)
            self.deserialize(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning(
                "ignoring the token cache %s (%s); you will be asked to sign in again",
                self.path,
                exc.__class__.__name__,
            )
        self.has_state_changed = False

    def save(self) -> bool:
        """Write the cache if MSAL changed it; return whether it was written."""
        with self._file_lock:
            if not self.has_state_changed:
                return False
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # mkstemp creates the file with mode 0600 before anything is written into it.
            fd, temp = tempfile.mkstemp(prefix=".token_cache.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(self.serialize())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temp, 0o600)
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            self.has_state_changed = False
            return True

    def __repr__(self) -> str:
        return f"FileTokenCache(path={str(self.path)!r})"


class DeviceCodeProvider:
    """Delegated tokens for an admin at a terminal: device-code sign-in once, then silent refresh."""

    def __init__(
        self,
        *,
        authority: str,
        client_id: str,
        scope: str,
        cache: FileTokenCache,
        output: TextIO | None = None,
        timeout: tuple[float, float] | None = None,
        verify: bool | str = True,
    ) -> None:
        """Prepare the provider; nothing is requested until the first call.

        Args:
            authority: ``https://{authority_host}/{tenant}``.
            client_id: the application (client) id of a registration with public client flows on.
            scope: ``{environment_url}/user_impersonation``.
            cache: the persisted token cache.
            output: where to print MSAL's sign-in instructions; default standard error.
            timeout: (connect, read) seconds for calls to Entra ID.
            verify: TLS verification or a CA bundle path.
        """
        self.authority = authority
        self.client_id = client_id
        self.scope = scope
        self.cache = cache
        self._output = output
        self._timeout = timeout
        self._verify = verify
        self._force = False
        self._lock = threading.Lock()

    def _app(self) -> msal.PublicClientApplication:
        app = msal_app(
            "public",
            self.authority,
            self.client_id,
            credential_id=_digest(str(self.cache.path)),
            token_cache=self.cache,
            timeout=self._timeout,
            verify=self._verify,
        )
        assert isinstance(app, msal.PublicClientApplication)
        return app

    def _pick_account(self, app: msal.PublicClientApplication) -> dict[str, Any] | None:
        accounts = app.get_accounts()
        tenant = self.authority.rsplit("/", 1)[-1].lower()
        for account in accounts:
            if str(account.get("realm", "")).lower() == tenant:
                return account
        return accounts[0] if accounts else None

    def __call__(self) -> str:
        """Return a cached or silently refreshed token; otherwise run the device-code sign-in.

        Raises:
            AuthError: the sign-in failed or was not completed in time.
            TransportError: Entra ID could not be reached.
        """
        with self._lock:
            try:
                token = self._acquire()
            except _MSAL_RAISES as exc:
                raise _error_from_exception(exc, self.authority, ()) from None
            finally:
                self._save_cache()
        return token

    def _save_cache(self) -> None:
        try:
            self.cache.save()
        except OSError as exc:
            # The token is still good for this run; the admin will be asked to sign in next time.
            logger.warning(
                "cannot write the token cache %s (%s); set auth.token_cache_path to a writable file",
                self.cache.path,
                exc.strerror or exc.__class__.__name__,
            )

    def _acquire(self) -> str:
        app = self._app()
        # The process-wide app may have been created by another provider with its own cache object.
        if isinstance(app.token_cache, FileTokenCache):
            self.cache = app.token_cache
        account = self._pick_account(app)
        if account is not None:
            result = app.acquire_token_silent_with_error(
                [self.scope], account=account, force_refresh=self._force
            )
            if result and "access_token" in result:
                self._force = False
                return str(result["access_token"])
            if result:
                logger.info(
                    "the saved sign-in could not be refreshed (%s); signing in again", result.get("error")
                )
        flow = app.initiate_device_flow(scopes=[self.scope])
        if "user_code" not in flow:
            raise auth_error_from_result(flow)
        out = self._output or sys.stderr
        print(
            flow.get("message") or f"Go to {flow.get('verification_uri')} and enter {flow['user_code']}",
            file=out,
        )
        out.flush()
        result = app.acquire_token_by_device_flow(flow)
        if "access_token" not in result:
            raise auth_error_from_result(result)
        self._force = False
        return str(result["access_token"])

    def force_refresh(self) -> None:
        """Make the next call redeem the refresh token for a new access token."""
        with self._lock:
            self._force = True

    def __repr__(self) -> str:
        return (
            f"DeviceCodeProvider(authority={self.authority!r}, client_id={self.client_id!r}, "
            f"scope={self.scope!r}, cache={str(self.cache.path)!r})"
        )


# --- certificates -----------------------------------------------------------------------------------


def _passphrase_hint() -> str:
    return f"set the passphrase in {env_var_name(('auth', 'certificate_passphrase'))}"


def _token_hint() -> str:
    return f"set {env_var_name(('auth', 'token'))} (the sandbox prints its token when it starts)"


def _warn_expiry(certificate: Any, path: Path, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.UTC)
    expires = certificate.not_valid_after_utc
    if expires < now:
        logger.warning("the certificate in %s expired on %s; Entra ID will refuse it", path, expires.date())
    elif expires - now < dt.timedelta(days=30):
        logger.warning("the certificate in %s expires on %s; renew it soon", path, expires.date())


def certificate_credential(auth: AuthSettings) -> tuple[dict[str, Any], str]:
    """Build MSAL's certificate credential from settings, checking the file before Entra ID does.

    A ``.pfx``/``.p12`` (or any non-PEM) file is handed to MSAL as ``private_key_pfx_path`` (MSAL
    then signs with the SHA-256 thumbprint). A PEM file must hold the private key and, unless
    ``certificate_thumbprint`` is set, the certificate, from which the SHA-1 thumbprint is
    computed; a thumbprint that does not match the certificate is refused here, because Entra ID
    would only answer AADSTS700027.

    Args:
        auth: the auth settings (``certificate_path``, ``certificate_passphrase``,
            ``certificate_thumbprint``, ``certificate_send_chain``).

    Returns:
        MSAL's ``client_credential`` dictionary and a digest naming it.

    Raises:
        ConfigError: the file is missing or unreadable, the passphrase is wrong or missing, the
            key and certificate do not belong together, or the thumbprint does not match.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    path = auth.certificate_path
    if path is None:
        raise ConfigError(
            "auth.mode = certificate needs the certificate file",
            key="auth.certificate_path",
            hint="set certificate_path under [auth]",
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"certificate file `{path}` cannot be read ({exc.strerror or exc.__class__.__name__})",
            key="auth.certificate_path",
            hint="check the path and that the user running dvsync may read it",
        ) from None
    passphrase = auth.certificate_passphrase.get_secret_value() if auth.certificate_passphrase else None
    passphrase_bytes = passphrase.encode() if passphrase else None
    is_pem = b"-----BEGIN" in data and path.suffix.lower() not in (".pfx", ".p12")

    if not is_pem:
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, passphrase_bytes)
        except (ValueError, TypeError):
            raise ConfigError(
                f"cannot open `{path}` as a PFX/PKCS#12 file: wrong or missing passphrase, or not a PFX file",
                key="auth.certificate_passphrase" if data else "auth.certificate_path",
                hint=_passphrase_hint() if data else "the file is empty",
            ) from None
        if key is None or cert is None:
            raise ConfigError(
                f"`{path}` must contain both the private key and its certificate",
                key="auth.certificate_path",
                hint="export the certificate from the store with its private key",
            )
        _check_thumbprint(auth, cert.fingerprint(hashes.SHA1()).hex().upper(), path)
        _warn_expiry(cert, path)
        credential: dict[str, Any] = {"private_key_pfx_path": str(path)}
        if passphrase:
            credential["passphrase"] = passphrase
        if auth.certificate_send_chain:
            credential["public_certificate"] = True
        return credential, _digest("pfx", str(path), data, passphrase)

    try:
        key = serialization.load_pem_private_key(data, passphrase_bytes)
    except TypeError:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        if passphrase_bytes is None:
            raise ConfigError(
                f"the private key in `{path}` is encrypted",
                key="auth.certificate_passphrase",
                hint=_passphrase_hint(),
            ) from None
        raise ConfigError(
            f"the private key in `{path}` is not encrypted, but a passphrase is set",
            key="auth.certificate_passphrase",
            hint=f"unset {env_var_name(('auth', 'certificate_passphrase'))}",
        ) from None
    except ValueError:
        raise ConfigError(
            f"no usable private key in `{path}` (or the passphrase is wrong)",
            key="auth.certificate_path",
            hint="the PEM file needs the private key (-----BEGIN PRIVATE KEY-----) and the certificate",
        ) from None
    certificates = x509.load_pem_x509_certificates(data) if b"-----BEGIN CERTIFICATE" in data else []
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    leaf = next(
        (
            c
            for c in certificates
            if c.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            == public
        ),
        None,
    )
    if certificates and leaf is None:
        raise ConfigError(
            f"none of the certificates in `{path}` belongs to its private key",
            key="auth.certificate_path",
            hint="put the private key and its own certificate in the file",
        )
    if leaf is None and not auth.certificate_thumbprint:
        raise ConfigError(
            f"`{path}` holds no certificate, so its thumbprint cannot be computed",
            key="auth.certificate_thumbprint",
            hint="append the certificate to the file (cat key.pem cert.pem > dvsync.pem) or set "
            "certificate_thumbprint under [auth]",
        )
    thumbprint = auth.certificate_thumbprint
    if leaf is not None:
        computed = leaf.fingerprint(hashes.SHA1()).hex().upper()
        _check_thumbprint(auth, computed, path)
        thumbprint = computed
        _warn_expiry(leaf, path)
    credential = {"private_key": data.decode("ascii", errors="replace"), "thumbprint": thumbprint}
    if passphrase:
        credential["passphrase"] = passphrase
    if auth.certificate_send_chain and leaf is not None:
        chain = [leaf, *[c for c in certificates if c is not leaf]]
        credential["public_certificate"] = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain
        )
    return credential, _digest("pem", str(path), data, passphrase)


def _check_thumbprint(auth: AuthSettings, computed: str, path: Path) -> None:
    given = auth.certificate_thumbprint
    if given and given.upper() != computed:
        raise ConfigError(
            f"auth.certificate_thumbprint {given} is not the thumbprint of the certificate in "
            f"`{path}` ({computed})",
            key="auth.certificate_thumbprint",
            hint="remove certificate_thumbprint (dvsync computes it) or point certificate_path at the "
            "right file",
        )


# --- from settings ----------------------------------------------------------------------------------


def default_token_cache_path(env: dict[str, str] | None = None) -> Path:
    """Return ``$XDG_CACHE_HOME/dvsync/token_cache.json`` (default ``~/.cache/dvsync/...``)."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dvsync" / "token_cache.json"


def token_provider_from_settings(
    settings: ConnectionSettings, *, output: TextIO | None = None
) -> TokenProvider:
    """Build the token provider that ``settings.auth.mode`` asks for.

    Args:
        settings: loaded settings (see :func:`jobs.service.settings_load.load_settings`).
        output: where the device-code flow prints its sign-in instructions (default stderr).

    Returns:
        A callable returning a bearer token, with ``force_refresh()``.

    Raises:
        ConfigError: a setting the mode needs is missing or wrong (secret not set, certificate
            unreadable...).
    """
    auth = settings.auth
    if auth.mode == "token":
        if auth.token is None:
            raise ConfigError("auth.mode = token needs a bearer token", key="auth.token", hint=_token_hint())
        return StaticTokenProvider(auth.token.get_secret_value())

    url = settings.dataverse.require_url()
    authority = auth.authority
    if authority is None or auth.client_id is None:
        raise ConfigError(
            f"auth.mode = {auth.mode} needs auth.tenant_id and auth.client_id",
            key="auth.tenant_id" if auth.tenant_id is None else "auth.client_id",
            hint="set them under [auth] in config.toml",
        )
    for key, value in (("tenant_id", auth.tenant_id), ("client_id", auth.client_id)):
        # config.example.toml's placeholders (all zeros, all ones) would only earn a cryptic AADSTS error.
        if value and len(set(value.replace("-", ""))) == 1:
            raise ConfigError(
                f"auth.{key} is still the placeholder `{value}` from config.example.toml",
                key=f"auth.{key}",
                hint="put your own value there: Entra admin center > App registrations > your app > Overview",
            )
    timeout = (settings.dataverse.timeout_connect, settings.dataverse.timeout_read)
    verify: bool | str = str(settings.dataverse.ca_bundle) if settings.dataverse.ca_bundle else True

    if auth.mode == "client_secret":
        secret = auth.client_secret.get_secret_value().strip() if auth.client_secret else ""
        if not secret:
            raise ConfigError(
                "auth.mode = client_secret needs the client secret",
                key="auth.client_secret",
                hint=f"set {env_var_name(('auth', 'client_secret'))} in the environment "
                "(keep it out of config.toml)",
            )
        return MsalClientCredentialsProvider(
            authority=authority,
            client_id=auth.client_id,
            scope=f"{url}/.default",
            credential=secret,
            credential_id=_digest("secret", secret),
            timeout=timeout,
            verify=verify,
            description="client secret",
        )
    if auth.mode == "certificate":
        credential, credential_id = certificate_credential(auth)
        return MsalClientCredentialsProvider(
            authority=authority,
            client_id=auth.client_id,
            scope=f"{url}/.default",
            credential=credential,
            credential_id=credential_id,
            timeout=timeout,
            verify=verify,
            description=f"certificate {auth.certificate_path}",
        )
    # device_code
    cache = FileTokenCache(auth.token_cache_path or default_token_cache_path())
    return DeviceCodeProvider(
        authority=authority,
        client_id=auth.client_id,
        scope=f"{url}/user_impersonation",
        cache=cache,
        output=output,
        timeout=timeout,
        verify=verify,
    )
