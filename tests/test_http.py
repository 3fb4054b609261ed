"""The HTTP layer: session headers, retry policy branches, typed errors, throttle headers."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from pathlib import Path

import pytest
import requests
import responses

from connector import __version__
from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    DuplicateRecordError,
    EndpointError,
    FatalApiError,
    InvalidRequestError,
    PermissionDeniedError,
    PreconditionFailedError,
    ProtocolError,
    RecordNotFoundError,
    RecordValidationError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)
from connector.http import (
    HttpClient,
    RetryPolicy,
    ThrottleGate,
    error_from_parts,
    parse_retry_after,
    sanitize_url,
)

ORG = "https://contoso.crm.dynamics.com"
BASE = f"{ORG}/api/data/v9.2/"
SECRET_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE"
ERRORS = json.loads((Path(__file__).parent / "data" / "dataverse" / "errors.json").read_text())


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class Provider:
    """A token provider with force_refresh, counting calls."""

    def __init__(self, tokens: list[str] | None = None) -> None:
        self.tokens = tokens or [SECRET_TOKEN]
        self.refreshes = 0

    def __call__(self) -> str:
        return self.tokens[min(self.refreshes, len(self.tokens) - 1)]

    def force_refresh(self) -> None:
        self.refreshes += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(clock: FakeClock, provider=None, **policy) -> HttpClient:
    retry = RetryPolicy(sleep=clock.sleep, clock=clock.clock, random=lambda: 0.5, **policy)
    return HttpClient(ORG, provider or Provider(), retry=retry)


def error_body(name: str) -> tuple[int, dict]:
    entry = ERRORS[name]
    return entry["status"], entry["body"]


# --------------------------------------------------------------------------- session


@responses.activate
def test_every_request_carries_odata_headers_user_agent_token_and_timeout(clock):
    responses.get(BASE + "WhoAmI", json={"UserId": "u"})
    client = make_client(clock)
    client.get_json("WhoAmI")
    sent = responses.calls[0].request
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["OData-MaxVersion"] == "4.0"
    assert sent.headers["OData-Version"] == "4.0"
    assert sent.headers["User-Agent"] == f"dvsync/{__version__}"
    assert sent.headers["Authorization"] == f"Bearer {SECRET_TOKEN}"
    assert sent.req_kwargs["timeout"] == (10.0, 120.0)


@responses.activate
def test_a_callers_own_session_still_sends_the_odata_headers_and_timeout(clock):
    responses.get(BASE + "WhoAmI", json={})
    client = HttpClient(ORG, Provider(), session=requests.Session(), retry=RetryPolicy(sleep=clock.sleep))
    client.get_json("WhoAmI")
    sent = responses.calls[0].request
    assert sent.headers["OData-Version"] == "4.0" and sent.headers["User-Agent"].startswith("dvsync/")
    assert sent.req_kwargs["timeout"] == (10.0, 120.0)


@responses.activate
def test_ca_bundle_is_used_for_verification(clock, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    responses.get(BASE + "WhoAmI", json={})
    client = HttpClient(ORG, Provider(), verify=str(bundle), retry=RetryPolicy(sleep=clock.sleep))
    client.get_json("WhoAmI")
    assert responses.calls[0].request.req_kwargs["verify"] == str(bundle)


def test_links_to_another_host_are_refused_so_the_token_stays_home(clock):
    client = make_client(clock)
    for link in (
        "https://evil.example.com/api/data/v9.2/leads?$skiptoken=1",
        "http://contoso.crm.dynamics.com/api/data/v9.2/leads",  # downgraded scheme
        "https://contoso.crm.dynamics.com.evil.example/api/data/v9.2/leads",
        "https://contoso.crm.dynamics.com:8443/api/data/v9.2/leads",
    ):
        with pytest.raises(ProtocolError, match="another host"):
            client.url(link)


def test_absolute_links_are_used_verbatim_and_paths_go_under_the_base(clock):
    client = make_client(clock)
    link = "https://contoso.api.crm.dynamics.com/api/data/v9.2/contacts?$skiptoken=%3Ccookie%3E"
    assert client.url(link) == link
    assert client.url("leads") == BASE + "leads"


def test_links_to_the_same_environment_are_followed_whatever_name_or_default_port_it_goes_by(clock):
    # dataverse.url keeps an explicit :443, and may be the api. alias; Dataverse's links use either
    # name without a port. Refusing them stopped every paged read at page 2.
    retry = RetryPolicy(sleep=clock.sleep, clock=clock.clock)
    plain = "https://contoso.crm.dynamics.com/api/data/v9.2/leads?$skiptoken=1"
    alias = "https://contoso.api.crm.dynamics.com/api/data/v9.2/leads?$skiptoken=1"
    for environment in ("https://contoso.crm.dynamics.com:443", "https://contoso.api.crm.dynamics.com"):
        client = HttpClient(environment, Provider(), retry=retry)
        assert client.url(plain) == plain
        assert client.url(alias) == alias
    other_org = "https://fabrikam.crm.dynamics.com/api/data/v9.2/leads"
    with pytest.raises(ProtocolError, match="another host"):
        HttpClient("https://contoso.api.crm.dynamics.com", Provider(), retry=retry).url(other_org)


# --------------------------------------------------------------------------- retries


@responses.activate
def test_429_waits_retry_after_seconds_then_succeeds(clock):
    status, body = error_body("throttle_requests")
    responses.get(BASE + "leads", status=status, json=body, headers={"Retry-After": "7"})
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock)
    assert client.get_json("leads") == {"value": []}
    assert clock.sleeps == [7.0]
    assert client.throttle.throttled_count == 1
    assert client.throttle.retry_after == 7.0


@responses.activate
def test_429_with_http_date_retry_after(clock):
    assert parse_retry_after(
        email.utils.formatdate(timeval=2_000_000_030.0, usegmt=True), now=2_000_000_000.0
    ) == pytest.approx(30.0)
    when = email.utils.formatdate(timeval=time.time() + 30, usegmt=True)
    status, body = error_body("throttle_concurrency")
    responses.get(BASE + "leads", status=status, json=body, headers={"Retry-After": when})
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock)
    client.get_json("leads")
    assert len(clock.sleeps) == 1 and 28 <= clock.sleeps[0] <= 31


def test_unparseable_retry_after_is_ignored():
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after("-5") == 0.0


@responses.activate
def test_429_without_retry_after_backs_off_exponentially(clock):
    status, body = error_body("throttle_time")
    for _ in range(3):
        responses.get(BASE + "leads", status=status, json=body)
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock, backoff_initial=2.0)
    client.get_json("leads")
    # random=0.5 → 0.75 of the exponential step 2, 4, 8; the gate waits the same pause, not more.
    assert clock.sleeps == [1.5, 3.0, 6.0]


@pytest.mark.parametrize("status", [502, 503, 504])
@responses.activate
def test_gateway_errors_are_retried_with_backoff(clock, status):
    responses.get(BASE + "leads", status=status, body="<html><title>Bad Gateway</title></html>")
    responses.get(BASE + "leads", json={"value": [1]})
    client = make_client(clock)
    assert client.get_json("leads") == {"value": [1]}
    assert clock.sleeps == [0.75]


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=8.0, random=lambda: 0.999)
    assert policy.backoff(10) <= 8.0
    low = RetryPolicy(backoff_initial=1.0, backoff_max=8.0, random=lambda: 0.0)
    assert low.backoff(10) == 4.0


@responses.activate
def test_connection_error_on_get_is_retried(clock):
    responses.get(BASE + "leads", body=requests.ConnectionError("Connection reset by peer"))
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock)
    assert client.get_json("leads") == {"value": []}
    assert len(responses.calls) == 2


@responses.activate
def test_read_timeout_on_get_is_retried(clock):
    responses.get(BASE + "leads", body=requests.ReadTimeout("read timed out"))
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock)
    assert client.get_json("leads") == {"value": []}


@responses.activate
def test_read_timeout_on_a_create_is_not_retried(clock):
    # A POST that may have reached the server must not run twice (it would create two records).
    responses.post(BASE + "leads", body=requests.ReadTimeout("read timed out"))
    client = make_client(clock)
    with pytest.raises(TransportError, match="read timeout"):
        client.request("POST", "leads", json_body={"lastname": "x"})
    assert len(responses.calls) == 1


@responses.activate
def test_connect_timeout_on_a_create_is_retried_because_it_never_reached_the_server(clock):
    responses.post(BASE + "leads", body=requests.ConnectTimeout("connect timed out"))
    responses.post(BASE + "leads", status=204)
    client = make_client(clock)
    assert client.request("POST", "leads", json_body={"lastname": "x"}).status_code == 204


@responses.activate
def test_502_on_a_create_is_not_retried(clock):
    responses.post(BASE + "leads", status=502, body="")
    client = make_client(clock)
    with pytest.raises(ServiceUnavailableError):
        client.request("POST", "leads", json_body={"lastname": "x"})
    assert len(responses.calls) == 1


@responses.activate
def test_batch_post_declared_idempotent_is_retried_after_read_timeout(clock):
    responses.post(BASE + "$batch", body=requests.ReadTimeout("read timed out"))
    responses.post(BASE + "$batch", status=200, body=b"")
    client = make_client(clock)
    client.request("POST", "$batch", data=b"x", idempotent=True)
    assert len(responses.calls) == 2


@responses.activate
def test_budget_exhausted_raises_the_typed_error_with_attempts(clock):
    status, body = error_body("throttle_requests")
    for _ in range(10):
        responses.get(BASE + "leads", status=status, json=body, headers={"Retry-After": "100"})
    client = make_client(clock, budget_seconds=250)
    with pytest.raises(ThrottledError) as info:
        client.get_json("leads")
    assert "gave up after 3 attempts" in str(info.value)
    assert info.value.code == "0x80072322"
    assert sum(clock.sleeps) <= 250


@responses.activate
def test_max_attempts_bounds_retries(clock):
    for _ in range(5):
        responses.get(BASE + "leads", status=503, body="")
    client = make_client(clock, max_attempts=3)
    with pytest.raises(ServiceUnavailableError, match="gave up after 3 attempts"):
        client.get_json("leads")
    assert len(responses.calls) == 3


@responses.activate
def test_sustained_429s_are_bounded_by_the_budget_not_by_the_attempt_count(clock):
    # 20 throttled answers at Retry-After 5 s take 100 s: well within a 300 s budget, so the
    # request must get through although 20 > max_attempts (8).
    status, body = error_body("throttle_requests")
    for _ in range(20):
        responses.get(BASE + "leads", status=status, json=body, headers={"Retry-After": "5"})
    responses.get(BASE + "leads", json={"value": []})
    client = make_client(clock, max_attempts=8, budget_seconds=300)
    assert client.get_json("leads") == {"value": []}
    assert len(responses.calls) == 21
    assert sum(clock.sleeps) == pytest.approx(100.0)


@responses.activate
def test_401_refreshes_the_token_once_and_succeeds(clock):
    provider = Provider(tokens=["old-token", "new-token"])
    responses.get(BASE + "WhoAmI", status=401, body="")
    responses.get(BASE + "WhoAmI", json={"UserId": "u"})
    client = make_client(clock, provider)
    assert client.get_json("WhoAmI") == {"UserId": "u"}
    assert provider.refreshes == 1
    assert responses.calls[1].request.headers["Authorization"] == "Bearer new-token"


@responses.activate
def test_401_twice_is_an_auth_error_with_the_application_user_hint(clock):
    provider = Provider()
    responses.get(BASE + "WhoAmI", status=401, body="", headers={"x-ms-service-request-id": "req-1"})
    responses.get(BASE + "WhoAmI", status=401, body="", headers={"x-ms-service-request-id": "req-2"})
    client = make_client(clock, provider)
    with pytest.raises(AuthError) as info:
        client.get_json("WhoAmI")
    assert provider.refreshes == 1
    assert "application user" in str(info.value)
    assert SECRET_TOKEN not in str(info.value)
    assert len(responses.calls) == 2


@responses.activate
def test_401_with_a_provider_that_cannot_refresh_is_sent_once_and_says_nothing_of_a_retry(clock):
    responses.get(BASE + "WhoAmI", status=401, body="")
    client = make_client(clock, lambda: SECRET_TOKEN)
    with pytest.raises(AuthError) as info:
        client.get_json("WhoAmI")
    assert len(responses.calls) == 1
    assert info.value.status == 401
    assert "twice" not in str(info.value) and "has not expired" in str(info.value)
    assert SECRET_TOKEN not in str(info.value)


@responses.activate
def test_the_token_is_refreshed_at_most_once_per_request_even_across_retries(clock):
    provider = Provider(tokens=["old-token", "new-token", "newer-token"])
    responses.get(BASE + "WhoAmI", status=401, body="")
    responses.get(BASE + "WhoAmI", status=503, body="")
    responses.get(BASE + "WhoAmI", status=401, body="")
    client = make_client(clock, provider)
    with pytest.raises(AuthError):
        client.get_json("WhoAmI")
    assert provider.refreshes == 1
    assert len(responses.calls) == 3


@responses.activate
def test_401_with_a_plain_callable_is_not_retried(clock):
    responses.get(BASE + "WhoAmI", status=401, body="")
    client = HttpClient(ORG, lambda: SECRET_TOKEN, retry=RetryPolicy(sleep=clock.sleep, clock=clock.clock))
    with pytest.raises(AuthError):
        client.get_json("WhoAmI")
    assert len(responses.calls) == 1


# --------------------------------------------------------------------------- throttle headers


@responses.activate
def test_dop_hint_and_ratelimit_headers_are_exposed(clock):
    responses.get(
        BASE + "leads",
        json={"value": []},
        headers={
            "x-ms-dop-hint": "8",
            "x-ms-ratelimit-burst-remaining-xrm-requests": "5999",
            "x-ms-ratelimit-time-remaining-xrm-requests": "1,199,950.00",
        },
    )
    client = make_client(clock)
    client.get_json("leads")
    assert client.throttle.dop_hint == 8
    assert client.throttle.burst_remaining == 5999
    assert client.throttle.time_remaining == pytest.approx(1199950.0)


def test_gate_holds_every_caller_until_retry_after(clock):
    gate = ThrottleGate(clock.clock, clock.sleep)
    gate.close_for(5)
    gate.close_for(2)  # a shorter pause never shortens a longer one
    assert gate.wait() == 5
    assert gate.wait() == 0


@responses.activate
def test_a_429_makes_every_later_request_wait_retry_after(clock):
    # One caller gives up at once (a Retry-After beyond its budget); another caller on the same
    # client must still wait out the Retry-After before sending: that holds all write-back threads.
    status, body = error_body("throttle_concurrency")
    responses.get(BASE + "leads", status=status, json=body, headers={"Retry-After": "4"})
    responses.get(BASE + "accounts", json={"value": []})
    client = make_client(clock, budget_seconds=3)
    with pytest.raises(ThrottledError):
        client.get_json("leads")
    assert clock.sleeps == []
    client.get_json("accounts")
    assert clock.sleeps == [4.0]


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("not_found", RecordNotFoundError, "0x80040217"),
        ("not_found_doc_empty_code", RecordNotFoundError, None),
        ("concurrency", PreconditionFailedError, "0x80060882"),
        ("change_token_expired", ChangeTokenExpiredError, "0x80044352"),
        ("change_tracking_disabled", ChangeTrackingDisabledError, "0x80072491"),
        ("throttle_requests", ThrottledError, "0x80072322"),
        ("throttle_time", ThrottledError, "0x80072321"),
        ("throttle_concurrency", ThrottledError, "0x80072326"),
        ("payload", InvalidRequestError, "0x80048d19"),
        ("duplicates_found", DuplicateRecordError, "0x80040333"),
        ("validation", RecordValidationError, "0x80044331"),
        ("plugin", RecordValidationError, "0x80040265"),
        ("segment_not_found", InvalidRequestError, "0x8006088a"),
        ("unknown_property", InvalidRequestError, "0x0"),
        ("privilege", PermissionDeniedError, "0x80040220"),
        ("sql_busy", ServiceUnavailableError, "0x8004a001"),
    ],
)
def test_error_codes_map_to_typed_errors(name, kind, code):
    status, body = error_body(name)
    error = error_from_parts(
        status,
        {"Content-Type": "application/json; odata.metadata=minimal", "REQ_ID": "5ecd1cb3"},
        json.dumps(body).encode(),
        method="PATCH",
        url=BASE + "accounts(00000000-0000-0000-0000-000000000001)",
    )
    assert type(error) is kind
    assert error.status == status
    assert error.code == code
    assert error.request_id == "5ecd1cb3"
    assert error.method == "PATCH"
    assert body["error"]["message"][:40] in str(error)


@pytest.mark.parametrize(
    ("name", "hint"), [("segment_not_found", "EntitySetName"), ("unknown_property", "lower case")]
)
def test_common_query_mistakes_come_with_a_hint(name, hint):
    status, body = error_body(name)
    error = error_from_parts(status, {}, json.dumps(body).encode(), method="GET", url=BASE + "Account")
    assert hint in str(error)


def test_412_duplicate_with_0x80040333_is_a_duplicate_not_a_concurrency_error():
    _, body = error_body("duplicates_found")
    error = error_from_parts(412, {}, json.dumps(body).encode(), method="PATCH", url=BASE + "leads(x)")
    assert isinstance(error, DuplicateRecordError)


def test_retry_after_is_carried_by_throttled_error():
    status, body = error_body("throttle_requests")
    error = error_from_parts(status, {"Retry-After": "12"}, json.dumps(body).encode(), method="GET", url=BASE)
    assert isinstance(error, ThrottledError) and error.retry_after == 12.0


def test_proxy_html_page_is_a_clear_error():
    error = error_from_parts(
        403,
        {"Content-Type": "text/html"},
        b"<html><head><title>Access Denied - Corporate Proxy</title></head><body>...</body></html>",
        method="GET",
        url=BASE + "leads",
    )
    assert "HTML page" in str(error) and "Corporate Proxy" in str(error)


def test_sanitize_url_removes_data_but_keeps_column_names():
    url = (
        BASE + "contacts(emailaddress1='jane@example.com')?$select=fullname,emailaddress1"
        "&$filter=lastname eq 'O''Bryan'&$skiptoken=%3Ccookie%3E&@p1='secret'"
    )
    clean = sanitize_url(url)
    assert "jane@example.com" not in clean
    assert "Bryan" not in clean and "cookie" not in clean and "secret" not in clean
    assert "$select=fullname,emailaddress1" in clean
    assert "$filter=…" in clean
    assert (
        sanitize_url("https://user:pw@contoso.crm.dynamics.com/api") == "https://contoso.crm.dynamics.com/api"
    )


@responses.activate
def test_errors_carry_the_sanitised_url_never_the_token(clock):
    status, body = error_body("not_found")
    responses.get(BASE + "leads", status=status, json=body, headers={"x-ms-service-request-id": "abc-123"})
    client = make_client(clock)
    with pytest.raises(RecordNotFoundError) as info:
        client.get_json("leads", params={"$filter": "emailaddress1 eq 'jane@example.com'"})
    text = str(info.value) + repr(info.value.args)
    assert SECRET_TOKEN not in text and "Bearer" not in text
    assert "jane@example.com" not in text
    assert info.value.request_id == "abc-123"
    assert "GET https://contoso.crm.dynamics.com/api/data/v9.2/leads?$filter=…" in text


# --------------------------------------------------------------------------- bodies


@responses.activate
def test_html_page_with_200_is_a_protocol_error(clock):
    responses.get(
        BASE + "leads",
        body="<!DOCTYPE html><html><title>Sign in to your account</title></html>",
        content_type="text/html",
    )
    with pytest.raises(ProtocolError, match=r"HTML page.*Sign in"):
        make_client(clock).get_json("leads")


@responses.activate
def test_truncated_json_is_a_protocol_error(clock):
    responses.get(BASE + "leads", body='{"value": [{"leadid": "1"', content_type="application/json")
    with pytest.raises(ProtocolError, match="truncated"):
        make_client(clock).get_json("leads")


@responses.activate
def test_empty_200_is_a_protocol_error(clock):
    responses.get(BASE + "leads", body="", content_type="application/json")
    with pytest.raises(ProtocolError, match="empty body"):
        make_client(clock).get_json("leads")


@responses.activate
def test_json_that_is_not_an_object_is_a_protocol_error(clock):
    responses.get(BASE + "leads", json=[1, 2])
    with pytest.raises(ProtocolError, match="JSON object"):
        make_client(clock).get_json("leads")


@responses.activate
def test_an_untrusted_certificate_is_not_retried(clock):
    responses.get(BASE + "WhoAmI", body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(EndpointError, match=r"^\[dataverse\.ca_bundle\]: the certificate .* is not trusted"):
        make_client(clock).get_json("WhoAmI")
    assert len(responses.calls) == 1 and clock.sleeps == []


@responses.activate
def test_redirect_to_a_login_page_is_a_fatal_error(clock):
    responses.get(BASE + "leads", status=302, headers={"Location": "https://login.example.com/"})
    with pytest.raises(FatalApiError, match="redirect"):
        make_client(clock).get_json("leads")


@pytest.mark.parametrize("names", [("REQ_ID", "Retry-After"), ("req_id", "retry-after")])
def test_a_failed_batch_part_keeps_its_request_id_and_retry_after_whatever_their_case(names):
    from connector.batch import BatchResponsePart
    from connector.errors import ThrottledError
    from connector.http import error_from_batch_part

    body = b'{"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}}'
    part = BatchResponsePart(429, "Too Many Requests", {names[0]: "req-1", names[1]: "7"}, body)
    error = error_from_batch_part(part, method="POST", url="https://org.example/api/data/v9.2/Merge")
    assert isinstance(error, ThrottledError)
    assert (error.request_id, error.retry_after, error.code) == ("req-1", 7.0, "0x80072322")
