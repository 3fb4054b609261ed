"""Auth: the real MSAL code paths against a fake Microsoft Entra ID served by `responses`.

MSAL, when it builds an application, reads the tenant's OpenID configuration
(``https://{host}/{tenant}/v2.0/.well-known/openid-configuration``); on a failed token request and
on ``remove_tokens_for_client`` it also asks the instance-discovery endpoint
(``https://{host}/common/discovery/instance``) for host aliases. Both are faked here, together
with the token and device-code endpoints, so every test runs msal's own request building,
caching and response parsing.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import re
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from connector.auth import (
    AADSTS_HINTS,
    APPLICATION_USER_HINT,
    DeviceCodeProvider,
    FileTokenCache,
    MsalClientCredentialsProvider,
    StaticTokenProvider,
    auth_error_from_result,
    reset_msal_apps,
    token_provider_from_settings,
)
from connector.errors import AuthError, TransportError
from core.errors import ConfigError
from jobs.service.settings import Settings
from jobs.service.settings_load import load_settings

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
URL = "https://contoso.crm4.dynamics.com"
SECRET = "s3cr3t-VALUE"
LOGIN = "https://login.microsoftonline.com"


@pytest.fixture(autouse=True)
def _fresh_msal_apps():
    # Each test is a new "process" as far as MSAL applications are concerned.
    reset_msal_apps()
    yield
    reset_msal_apps()


@pytest.fixture
def entra():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeEntra(rsps)


class FakeEntra:
    """Registers Entra ID's discovery endpoints and records token requests."""

    def __init__(self, rsps: responses.RequestsMock, host: str = LOGIN, tenant: str = TENANT) -> None:
        self.rsps = rsps
        self.host = host
        self.tenant = tenant
        self.token_url = f"{host}/{tenant}/oauth2/v2.0/token"
        self.device_url = f"{host}/{tenant}/oauth2/v2.0/devicecode"
        self.add_discovery(host, tenant)

    def add_discovery(self, host: str, tenant: str) -> None:
        base = f"{host}/{tenant}"
        self.rsps.get(
            f"{base}/v2.0/.well-known/openid-configuration",
            json={
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{host}/{tenant}/v2.0",
            },
        )
        hostname = host.split("://")[1]
        self.rsps.get(
            re.compile(re.escape(f"{host}/common/discovery/instance") + r".*"),
            json={
                "tenant_discovery_endpoint": f"{base}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": hostname, "preferred_cache": hostname, "aliases": [hostname]}
                ],
            },
        )

    def token_requests(self) -> list[dict[str, str]]:
        return [
            {k: v[0] for k, v in parse_qs(call.request.body).items()}
            for call in self.rsps.calls
            if call.request.url == self.token_url
        ]

    def on_token(self, *answers: tuple[int, dict]) -> None:
        """Answer successive token requests with these (status, body) pairs; the last one repeats."""
        queue = list(answers)

        def callback(request):
            status, body = queue.pop(0) if len(queue) > 1 else queue[0]
            return status, {"Content-Type": "application/json"}, json.dumps(body)

        self.rsps.add_callback(responses.POST, self.token_url, callback=callback)


def app_token(value: str) -> tuple[int, dict]:
    return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": value}


def entra_error(code: int, error: str, description: str, status: int = 400) -> tuple[int, dict]:
    return status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: 1b2c\r\nCorrelation ID: 9f8e\r\n"
        "Timestamp: 2026-01-01 10:00:00Z",
        "error_codes": [code],
        "timestamp": "2026-01-01 10:00:00Z",
        "trace_id": "1b2c",
        "correlation_id": "9f8e7d6c-0000-0000-0000-000000000000",
    }


def secret_settings(**auth) -> Settings:
    return Settings(
        dataverse={"url": URL},
        auth={
            "mode": "client_secret",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "client_secret": SECRET,
            **auth,
        },
    )


# --- client secret ------------------------------------------------------------------------------------


def test_client_secret_token_is_requested_once_then_served_from_msal_cache(entra):
    entra.on_token(app_token("tok-1"), app_token("tok-2"))
    provider = token_provider_from_settings(secret_settings())
    assert provider() == "tok-1"
    assert provider() == "tok-1"
    [request] = entra.token_requests()
    assert request["grant_type"] == "client_credentials"
    assert request["client_id"] == CLIENT
    assert request["client_secret"] == SECRET
    assert request["scope"] == f"{URL}/.default"


def test_one_msal_application_per_process_shares_the_cache(entra):
    entra.on_token(app_token("tok-1"), app_token("tok-2"))
    first = token_provider_from_settings(secret_settings())
    second = token_provider_from_settings(secret_settings())
    assert first() == "tok-1"
    assert second() == "tok-1"
    assert len(entra.token_requests()) == 1
    # The OpenID configuration was read once: one application.
    discovery = [c for c in entra.rsps.calls if "openid-configuration" in c.request.url]
    assert len(discovery) == 1


def test_force_refresh_drops_the_cached_token(entra):
    entra.on_token(app_token("tok-1"), app_token("tok-2"))
    provider = token_provider_from_settings(secret_settings())
    assert provider() == "tok-1"
    provider.force_refresh()
    assert provider() == "tok-2"
    assert provider() == "tok-2"
    assert len(entra.token_requests()) == 2


def test_rotated_secret_gets_its_own_application(entra):
    entra.on_token(app_token("tok-1"), app_token("tok-2"))
    assert token_provider_from_settings(secret_settings())() == "tok-1"
    assert token_provider_from_settings(secret_settings(client_secret="rotated-secret"))() == "tok-2"
    assert [r["client_secret"] for r in entra.token_requests()] == [SECRET, "rotated-secret"]


@pytest.mark.parametrize(
    ("code", "error", "description", "hint_words"),
    [
        (7000215, "invalid_client", "Invalid client secret provided.", "Value (not its Secret ID)"),
        (7000222, "invalid_client", "The provided client secret keys for app are expired.", "expired"),
        (
            700016,
            "unauthorized_client",
            "Application with identifier was not found in the directory.",
            "client id",
        ),
        (90002, "invalid_request", "Tenant not found.", "tenant was not found"),
        (900023, "invalid_request", "Specified tenant identifier is neither a valid DNS name", "tenant"),
        (700027, "invalid_client", "Client assertion contains an invalid signature.", "certificate"),
        (500011, "invalid_resource", "The resource principal named was not found.", "dataverse.url"),
    ],
)
def test_entra_errors_become_auth_errors_with_code_and_hint(entra, code, error, description, hint_words):
    entra.on_token(entra_error(code, error, description, status=401))
    provider = token_provider_from_settings(secret_settings())
    with pytest.raises(AuthError) as info:
        provider()
    err = info.value
    assert err.code == f"AADSTS{code}"
    assert err.hint == AADSTS_HINTS[f"AADSTS{code}"]
    assert hint_words in err.hint
    assert description in err.description
    assert "Trace ID" not in str(err)  # Entra's diagnostics trimmed
    assert err.correlation_id == "9f8e7d6c-0000-0000-0000-000000000000"
    assert f"[AADSTS{code}]" in str(err)


def test_unknown_tenant_fails_at_discovery_with_its_code(entra):
    entra.rsps.get(
        f"{LOGIN}/nosuchtenant.onmicrosoft.com/v2.0/.well-known/openid-configuration",
        status=400,
        json={
            "error": "invalid_tenant",
            "error_description": "AADSTS90002: Tenant 'nosuchtenant.onmicrosoft.com' not found. Check to "
            "make sure you have the correct tenant ID. Trace ID: 1 Correlation ID: 2 Timestamp: 3",
        },
    )
    provider = token_provider_from_settings(secret_settings(tenant_id="nosuchtenant.onmicrosoft.com"))
    with pytest.raises(AuthError) as info:
        provider()
    assert info.value.code == "AADSTS90002"
    assert "tenant was not found" in info.value.hint
    assert SECRET not in str(info.value)


def test_entra_unreachable_is_a_retriable_transport_error(entra):
    entra.rsps.replace(
        responses.GET,
        f"{LOGIN}/{TENANT}/v2.0/.well-known/openid-configuration",
        body=__import__("requests").ConnectionError("connection refused"),
    )
    provider = token_provider_from_settings(secret_settings())
    with pytest.raises(TransportError, match="could not reach Microsoft Entra ID"):
        provider()


def test_description_without_error_codes_still_yields_the_code():
    err = auth_error_from_result(
        {
            "error": "invalid_client",
            "error_description": "AADSTS7000222: The provided client secret keys expired.",
        }
    )
    assert err.code == "AADSTS7000222"
    assert "expired" in err.hint
    other = auth_error_from_result({"error": "invalid_scope", "error_description": "bad scope"})
    assert other.code is None and "dataverse.url" in other.hint


def test_application_user_hint_is_there_for_the_http_layer():
    assert "application user" in APPLICATION_USER_HINT
    assert "security role" in APPLICATION_USER_HINT


def test_secrets_and_tokens_never_appear_in_errors_reprs_or_logs(entra, caplog):
    caplog.set_level(logging.DEBUG)
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.TOKEN-VALUE.sig"
    # Entra echoing the secret would be odd, but the provider scrubs it anyway.
    entra.on_token(
        app_token(token),
        entra_error(7000215, "invalid_client", f"Invalid client secret provided: {SECRET}.", status=401),
    )
    settings = secret_settings()
    provider = token_provider_from_settings(settings)
    assert provider() == token
    provider.force_refresh()
    with pytest.raises(AuthError) as info:
        provider()
    texts = [
        str(info.value),
        repr(info.value),
        repr(info.value.args),
        str(info.value.description),
        repr(provider),
        str(provider),
        repr(settings),
        str(settings),
        caplog.text,
    ]
    for text in texts:
        assert SECRET not in text
        assert "TOKEN-VALUE" not in text
    assert "<client secret>" in repr(provider)
    static = StaticTokenProvider(token)
    assert "TOKEN-VALUE" not in repr(static)


def test_client_secret_mode_without_secret_says_which_variable(tmp_path):
    settings = secret_settings(client_secret=None)
    with pytest.raises(ConfigError, match="DVSYNC__AUTH__CLIENT_SECRET") as info:
        token_provider_from_settings(settings)
    assert info.value.key == "auth.client_secret"


# --- sovereign clouds ---------------------------------------------------------------------------------


def test_us_government_cloud_signs_in_at_login_microsoftonline_us():
    host = "https://login.microsoftonline.us"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake = FakeEntra(rsps, host=host)
        fake.on_token(app_token("gov-token"))
        settings = Settings(
            dataverse={"url": "https://agency.crm.microsoftdynamics.us"},
            auth={"mode": "client_secret", "tenant_id": TENANT, "client_id": CLIENT, "client_secret": SECRET},
        )
        provider = token_provider_from_settings(settings)
        assert provider() == "gov-token"
        [request] = fake.token_requests()
        assert request["scope"] == "https://agency.crm.microsoftdynamics.us/.default"


# --- certificates ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dvsync-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def pem_key(key, passphrase: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def cert_settings(path: Path, **auth) -> Settings:
    return Settings(
        dataverse={"url": URL},
        auth={
            "mode": "certificate",
            "tenant_id": TENANT,
            "client_id": CLIENT,
            "certificate_path": path,
            **auth,
        },
    )


def jwt_header(assertion: str) -> dict:
    head = assertion.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_certificate_pem_with_key_and_cert_signs_an_assertion_with_the_computed_thumbprint(
    entra, tmp_path, keypair
):
    key, cert = keypair
    path = tmp_path / "dvsync.pem"
    path.write_bytes(pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
    entra.on_token(app_token("cert-token"))
    provider = token_provider_from_settings(cert_settings(path))
    assert provider() == "cert-token"
    [request] = entra.token_requests()
    assert request["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in request
    header = jwt_header(request["client_assertion"])
    # MSAL keeps base64url padding; compare the encoded digests.
    assert header["x5t"].rstrip("=") == b64url(cert.fingerprint(hashes.SHA1()))
    assert "x5c" not in header
    assert "PRIVATE KEY" not in repr(provider)


def test_certificate_send_chain_adds_x5c(entra, tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "dvsync.pem"
    path.write_bytes(pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
    entra.on_token(app_token("cert-token"))
    token_provider_from_settings(cert_settings(path, certificate_send_chain=True))()
    [request] = entra.token_requests()
    assert "x5c" in jwt_header(request["client_assertion"])


def test_encrypted_pem_key_with_thumbprint_only(entra, tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "key.pem"
    path.write_bytes(pem_key(key, b"pass-PHRASE"))
    thumbprint = cert.fingerprint(hashes.SHA1()).hex()
    entra.on_token(app_token("cert-token"))
    settings = cert_settings(path, certificate_thumbprint=thumbprint, certificate_passphrase="pass-PHRASE")
    assert token_provider_from_settings(settings)() == "cert-token"
    [request] = entra.token_requests()
    assert jwt_header(request["client_assertion"])["x5t"].rstrip("=") == b64url(bytes.fromhex(thumbprint))
    with pytest.raises(ConfigError, match="is encrypted") as info:
        token_provider_from_settings(cert_settings(path, certificate_thumbprint=thumbprint))
    assert "DVSYNC__AUTH__CERTIFICATE_PASSPHRASE" in str(info.value)


def test_pfx_with_passphrase_uses_msal_pfx_support(entra, tmp_path, keypair):
    key, cert = keypair
    path = tmp_path / "dvsync.pfx"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"dvsync", key, cert, None, serialization.BestAvailableEncryption(b"pfx-PASS")
        )
    )
    entra.on_token(app_token("pfx-token"))
    assert (
        token_provider_from_settings(cert_settings(path, certificate_passphrase="pfx-PASS"))() == "pfx-token"
    )
    [request] = entra.token_requests()
    header = jwt_header(request["client_assertion"])
    assert header["x5t#S256"].rstrip("=") == b64url(cert.fingerprint(hashes.SHA256()))
    with pytest.raises(ConfigError, match="wrong or missing passphrase") as info:
        token_provider_from_settings(cert_settings(path, certificate_passphrase="wrong"))
    assert info.value.key == "auth.certificate_passphrase"
    assert "wrong" not in str(info.value).replace("wrong or missing", "")


def test_certificate_problems_are_caught_before_entra_sees_them(tmp_path, keypair):
    key, cert = keypair
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    both = tmp_path / "both.pem"
    both.write_bytes(pem_key(key) + cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError, match="is not the thumbprint") as info:
        token_provider_from_settings(cert_settings(both, certificate_thumbprint="AB" * 20))
    assert info.value.key == "auth.certificate_thumbprint"
    key_only = tmp_path / "key.pem"
    key_only.write_bytes(pem_key(key))
    with pytest.raises(ConfigError, match="holds no certificate"):
        token_provider_from_settings(cert_settings(key_only))
    mismatched = tmp_path / "mismatch.pem"
    mismatched.write_bytes(pem_key(other_key) + cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError, match="belongs to its private key"):
        token_provider_from_settings(cert_settings(mismatched))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN NOTHING-----\nabc\n-----END NOTHING-----\n")
    with pytest.raises(ConfigError, match="no usable private key"):
        token_provider_from_settings(cert_settings(garbage))


def test_expired_certificate_is_warned_about(tmp_path, caplog, keypair):
    key, _ = keypair
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    old = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(past)
        .not_valid_after(past + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "old.pem"
    path.write_bytes(pem_key(key) + old.public_bytes(serialization.Encoding.PEM))
    with caplog.at_level(logging.WARNING, logger="connector.auth"):
        token_provider_from_settings(cert_settings(path))
    assert "expired on 2020-01-31" in caplog.text


# --- device code ------------------------------------------------------------------------------------


def id_token(tenant: str = TENANT) -> str:
    now = int(time.time())
    claims = {
        "aud": CLIENT,
        "iss": f"{LOGIN}/{tenant}/v2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "oid": "00000000-0000-0000-0000-0000000000aa",
        "tid": tenant,
        "sub": "subject",
        "preferred_username": "admin@contoso.onmicrosoft.com",
        "name": "Contoso Admin",
    }
    return ".".join([b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(claims).encode()), ""])


def user_token(access: str, refresh: str) -> tuple[int, dict]:
    client_info = {"uid": "00000000-0000-0000-0000-0000000000aa", "utid": TENANT}
    return 200, {
        "token_type": "Bearer",
        "scope": f"{URL}/user_impersonation",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": access,
        "refresh_token": refresh,
        "id_token": id_token(),
        "client_info": b64url(json.dumps(client_info).encode()),
    }


def device_settings(cache: Path) -> Settings:
    return Settings(
        dataverse={"url": URL},
        auth={"mode": "device_code", "tenant_id": TENANT, "client_id": CLIENT, "token_cache_path": cache},
    )


def add_device_code_endpoint(entra: FakeEntra) -> None:
    entra.rsps.post(
        entra.device_url,
        json={
            "device_code": "DEVICE-CODE",
            "user_code": "ABCD-EFGH",
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            # 0 keeps MSAL's polling loop from sleeping in tests.
            "interval": 0,
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and "
            "enter the code ABCD-EFGH to authenticate.",
        },
    )


def test_device_code_prompts_once_then_reuses_the_cache_file(entra, tmp_path):
    cache_path = tmp_path / "cache" / "token_cache.json"
    add_device_code_endpoint(entra)
    entra.on_token(
        (400, {"error": "authorization_pending", "error_description": "AADSTS70016: pending"}),
        user_token("user-token-1", "refresh-1"),
        user_token("user-token-2", "refresh-2"),
    )
    out = io.StringIO()
    provider = token_provider_from_settings(device_settings(cache_path), output=out)
    assert isinstance(provider, DeviceCodeProvider)
    assert provider() == "user-token-1"
    assert "enter the code ABCD-EFGH" in out.getvalue()
    requests_made = entra.token_requests()
    assert [r["grant_type"] for r in requests_made] == ["urn:ietf:params:oauth:grant-type:device_code"] * 2
    [device_request] = [c.request for c in entra.rsps.calls if c.request.url == entra.device_url]
    assert f"{URL}/user_impersonation" in parse_qs(device_request.body)["scope"][0].split()

    # The cache file: private to its owner, in a private directory.
    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_path.parent.stat().st_mode) == 0o700
    assert "refresh-1" in cache_path.read_text()

    # A new process: a new MSAL application, same file, no new prompt.
    reset_msal_apps()
    quiet = io.StringIO()
    again = token_provider_from_settings(device_settings(cache_path), output=quiet)
    assert again() == "user-token-1"
    assert quiet.getvalue() == ""
    assert len([c for c in entra.rsps.calls if c.request.url == entra.device_url]) == 1

    # A 401 from Dataverse: the refresh token buys a new access token, still without a prompt.
    again.force_refresh()
    assert again() == "user-token-2"
    last = entra.token_requests()[-1]
    assert last["grant_type"] == "refresh_token" and last["refresh_token"] == "refresh-1"
    assert quiet.getvalue() == ""
    assert "refresh-2" in cache_path.read_text()


def test_device_code_declined_becomes_auth_error(entra, tmp_path):
    add_device_code_endpoint(entra)
    entra.on_token(
        entra_error(
            70020, "expired_token", "The provided value for the input parameter 'device_code' is not valid."
        )
    )
    provider = token_provider_from_settings(device_settings(tmp_path / "c.json"), output=io.StringIO())
    with pytest.raises(AuthError) as info:
        provider()
    assert info.value.code == "AADSTS70020"
    assert "within the time shown" in info.value.hint


def test_device_code_needs_public_client_flows(entra, tmp_path):
    entra.rsps.post(
        entra.device_url,
        status=400,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000218: The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.",
            "error_codes": [7000218],
        },
    )
    provider = token_provider_from_settings(device_settings(tmp_path / "c.json"), output=io.StringIO())
    with pytest.raises(AuthError, match="Allow public client flows"):
        provider()


# --- the cache file -------------------------------------------------------------------------------


def test_cache_file_written_atomically_only_when_changed(tmp_path, monkeypatch):
    monkeypatch.setattr("os.umask", lambda mask: 0)  # harmless; mkstemp ignores the umask anyway
    path = tmp_path / "tc.json"
    cache = FileTokenCache(path)
    assert cache.save() is False and not path.exists()
    cache.add(
        {
            "client_id": CLIENT,
            "scope": [f"{URL}/.default"],
            "token_endpoint": f"{LOGIN}/{TENANT}/oauth2/v2.0/token",
            "response": {"access_token": "at", "token_type": "Bearer", "expires_in": 3600},
        }
    )
    assert cache.save() is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.stat().st_mtime_ns
    assert cache.save() is False
    assert path.stat().st_mtime_ns == before
    assert list(tmp_path.glob(".token_cache.*")) == []  # no temporary files left behind
    reloaded = FileTokenCache(path)
    assert list(reloaded.search(FileTokenCache.CredentialType.ACCESS_TOKEN))


def test_loose_permissions_are_tightened_and_corrupt_cache_is_ignored(tmp_path, caplog):
    path = tmp_path / "tc.json"
    path.write_text("{not json")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="connector.auth"):
        cache = FileTokenCache(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "ignoring the token cache" in caplog.text
    assert list(cache.search(FileTokenCache.CredentialType.ACCESS_TOKEN)) == []


# --- static token ---------------------------------------------------------------------------------


def test_static_token_from_settings_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        env={"DVSYNC__AUTH__MODE": "token", "DVSYNC__AUTH__TOKEN": "Bearer sandbox-token"}
    )
    provider = token_provider_from_settings(settings)
    assert provider() == "sandbox-token"
    provider.force_refresh()  # cannot renew; must not raise
    assert provider() == "sandbox-token"
    assert repr(provider) == "StaticTokenProvider(token=***)"


def test_token_mode_without_token_says_which_variable():
    with pytest.raises(ConfigError, match="DVSYNC__AUTH__TOKEN"):
        token_provider_from_settings(Settings(auth={"mode": "token"}))


def test_providers_are_plain_callables_with_force_refresh(entra):
    provider = token_provider_from_settings(secret_settings())
    assert isinstance(provider, MsalClientCredentialsProvider)
    assert callable(provider) and callable(provider.force_refresh)


def test_entra_5xx_is_retriable_and_an_html_page_is_explained(entra):
    entra.rsps.post(entra.token_url, status=503, body="<html>Service Unavailable</html>")
    provider = token_provider_from_settings(secret_settings())
    with pytest.raises(TransportError, match="unavailable") as info:
        provider()
    assert info.value.status == 503
    reset_msal_apps()
    entra.rsps.replace(responses.POST, entra.token_url, status=200, body="<html>Sign in to the proxy</html>")
    with pytest.raises(AuthError, match="was not JSON") as info:
        token_provider_from_settings(secret_settings())()
    assert "proxy" in info.value.hint


def test_concurrent_callers_share_one_token_request(entra):
    import threading

    entra.on_token(app_token("tok-1"), app_token("tok-2"))
    provider = token_provider_from_settings(secret_settings())
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(provider())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["tok-1"] * 8
    assert len(entra.token_requests()) == 1


def test_revoked_refresh_token_falls_back_to_a_new_device_code_sign_in(entra, tmp_path):
    add_device_code_endpoint(entra)
    entra.on_token(
        user_token("user-token-1", "refresh-1"),
        entra_error(50173, "invalid_grant", "The provided grant has expired due to it being revoked."),
        user_token("user-token-2", "refresh-2"),
    )
    out = io.StringIO()
    provider = token_provider_from_settings(device_settings(tmp_path / "c.json"), output=out)
    assert provider() == "user-token-1"
    provider.force_refresh()
    assert provider() == "user-token-2"
    grants = [r["grant_type"] for r in entra.token_requests()]
    assert grants == [
        "urn:ietf:params:oauth:grant-type:device_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
    assert out.getvalue().count("ABCD-EFGH") == 2


def test_example_placeholders_are_refused_before_asking_entra(monkeypatch):
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    settings = load_settings(example, env={"DVSYNC__AUTH__CLIENT_SECRET": SECRET})
    with pytest.raises(ConfigError, match="placeholder") as info:
        token_provider_from_settings(settings)
    assert info.value.key == "auth.tenant_id"
    assert SECRET not in str(info.value)
