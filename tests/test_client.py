"""DataverseClient's public surface: construction, from_settings, exports, no secret in reprs."""

from __future__ import annotations

import pytest
import responses

import connector
from connector import DataverseClient, RetryPolicy
from core.errors import ConfigError
from jobs.service.connect import connect
from jobs.service.settings_load import load_settings

SANDBOX = "http://127.0.0.1:5555"
SECRET = "sandbox-token-7f3a9c"


def settings(**extra: str):
    env = {
        "DVSYNC__DATAVERSE__URL": SANDBOX,
        "DVSYNC__AUTH__MODE": "token",
        "DVSYNC__AUTH__TOKEN": SECRET,
        **extra,
    }
    return load_settings(None, env=env)


@responses.activate
def test_from_settings_uses_url_token_timeouts_and_retry_settings(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    client = connect(
        settings(
            DVSYNC__DATAVERSE__TIMEOUT_CONNECT="3",
            DVSYNC__DATAVERSE__TIMEOUT_READ="45",
            DVSYNC__DATAVERSE__CA_BUNDLE=str(bundle),
            DVSYNC__HTTP__MAX_ATTEMPTS="2",
            DVSYNC__HTTP__RETRY_BUDGET_SECONDS="30",
            DVSYNC__WRITEBACK__MAX_PARALLEL="6",
        )
    )
    responses.get(
        f"{SANDBOX}/api/data/v9.2/WhoAmI", json={"UserId": "u", "BusinessUnitId": "b", "OrganizationId": "o"}
    )
    assert client.whoami().user_id == "u"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.req_kwargs["timeout"] == (3.0, 45.0)
    assert sent.req_kwargs["verify"] == str(bundle)
    assert client.http.retry.max_attempts == 2 and client.http.retry.budget_seconds == 30.0
    assert client.max_parallel == 6
    assert client.base_url == f"{SANDBOX}/api/data/v9.2/"


def test_from_settings_without_url_names_the_key():
    with pytest.raises(ConfigError, match=r"dataverse\.url"):
        DataverseClient.from_settings(
            load_settings(None, env={"DVSYNC__AUTH__MODE": "token", "DVSYNC__AUTH__TOKEN": "x"})
        )


def test_the_token_is_in_no_repr():
    client = DataverseClient.from_settings(settings())
    assert SECRET not in repr(client) and SECRET not in repr(client.http)
    assert SECRET not in repr(client.http.retry)


def test_constructor_validates_its_arguments():
    with pytest.raises(ValueError, match="http"):
        DataverseClient("contoso.crm.dynamics.com", lambda: "t")
    with pytest.raises(TypeError, match="callable"):
        DataverseClient("https://contoso.crm.dynamics.com", "a-token-string")  # type: ignore[arg-type]


def test_a_client_built_directly_retries_like_one_built_from_default_settings(tmp_path, monkeypatch):
    # Two defaults for one policy (600 s in RetryPolicy, 300 s in settings) drifted apart once.
    monkeypatch.chdir(tmp_path)  # no ./config.toml
    defaults = load_settings(env={"DVSYNC__DATAVERSE__URL": "https://contoso.crm.dynamics.com"})
    assert RetryPolicy().budget_seconds == defaults.http.retry_budget_seconds
    assert RetryPolicy().max_attempts == defaults.http.max_attempts


def test_constructor_refuses_plain_http_except_to_loopback():
    # The same rule as dataverse.url in settings: a bearer token never crosses a network in clear.
    with pytest.raises(ConfigError, match="plain http") as info:
        DataverseClient("http://contoso.crm.dynamics.com", lambda: "t")
    assert info.value.key == "dataverse.url"
    for url in ("http://127.0.0.1:8080", "http://localhost:5555", "http://[::1]:5555"):
        assert DataverseClient(url, lambda: "t").base_url.startswith(url)


def test_trailing_slash_and_api_version():
    client = DataverseClient("https://contoso.crm.dynamics.com/", lambda: "t", api_version="v9.1")
    assert client.base_url == "https://contoso.crm.dynamics.com/api/data/v9.1/"


@responses.activate
def test_throttle_state_is_exposed_on_the_client():
    client = DataverseClient(SANDBOX, lambda: "t", retry=RetryPolicy(sleep=lambda s: None))
    responses.get(f"{SANDBOX}/api/data/v9.2/leads", json={"value": []}, headers={"x-ms-dop-hint": "12"})
    list(client.iter_records("leads", ["fullname"]))
    assert client.throttle_state.dop_hint == 12


def test_public_exports():
    for name in (
        "DataverseClient",
        "ConnectionSettings",
        "UpdateResult",
        "Changes",
        "ChangePage",
        "TableDefinition",
        "ColumnDefinition",
        "ColumnSpec",
        "WhoAmI",
        "ThrottledError",
        "ChangeTokenExpiredError",
        "ChangeTrackingDisabledError",
        "ProtocolError",
        "RecordNotFoundError",
    ):
        assert name in connector.__all__ and hasattr(connector, name)


# --------------------------------------------------------------------------- over real HTTP


def test_a_full_cycle_against_the_sandbox_over_loopback(sandbox_factory):
    """Read in pages, track changes, write back in parallel batches, read the delta, manage columns,
    all through injected 429s, 503s, dropped connections and truncated bodies that the retry policy
    must absorb."""
    import connector.sandbox as sandbox_module

    config = sandbox_module.SandboxConfig(
        faults=sandbox_module.FaultConfig(
            throttle=0.05, unavailable=0.05, drop=0.03, truncate=0.03, retry_after=1, seed=5
        ),
        change_tracking_disabled=frozenset({"salesorderdetail"}),
        sleep=lambda seconds: None,
    )
    sandbox = sandbox_factory(config=config)  # the session's seeded copy: no second seeding
    sleeps: list[float] = []
    client = DataverseClient(
        sandbox.url, lambda: sandbox.token, retry=RetryPolicy(sleep=sleeps.append, max_attempts=12)
    )
    assert client.whoami().user_id

    pages = list(client.iter_change_pages("leads", ["fullname", "emailaddress1"], page_size=1000))
    records = [r for page in pages for r in page.records]
    assert len(pages) > 1 and pages[-1].delta_link and all(p.delta_link is None for p in pages[:-1])
    assert len({r["leadid"] for r in records}) == len(records)

    chosen = [r["leadid"] for r in records[:250]]
    missing = "00000000-0000-0000-0000-0000000000aa"
    results = client.update_many(
        "leads",
        [(record_id, {"emailaddress1": f"dvsync.{n}@example.com"}) for n, record_id in enumerate(chosen)]
        + [(missing, {"emailaddress1": "nobody@example.com"})],
        batch_size=50,
        max_workers=4,
    )
    assert [r.id for r in results] == [*chosen, missing]
    assert all(r.ok for r in results[:-1])
    assert (results[-1].ok, results[-1].status, results[-1].error_code) == (False, 404, "0x80040217")

    delta = client.read_changes("leads", ["fullname", "emailaddress1"], delta_link=pages[-1].delta_link)
    assert {r["leadid"] for r in delta.records} == set(chosen)  # If-Match: * created nothing
    assert {r["emailaddress1"] for r in delta.records} == {f"dvsync.{n}@example.com" for n in range(250)}

    with pytest.raises(connector.ChangeTrackingDisabledError):
        client.read_changes("salesorderdetails", ["quantity"])

    table = client.get_table("lead")
    assert (table.entity_set_name, table.primary_id_attribute) == ("leads", "leadid")
    spec = connector.ColumnSpec("dvs_LeadScore", "Integer", "Lead score", min_value=0, max_value=100)
    assert client.ensure_columns("lead", [spec], solution="dvsync") == ["dvs_leadscore"]
    assert client.ensure_columns("lead", [spec], solution="dvsync") == []
    assert sleeps, "the injected faults should have made the client wait at least once"


@pytest.mark.live
def test_read_only_round_trip_against_a_real_environment():
    """Opt-in: DVSYNC_LIVE_CONFIG=/path/to/config.toml pytest -m live (reads only, writes nothing)."""
    import os

    path = os.environ.get("DVSYNC_LIVE_CONFIG")
    if not path:
        pytest.skip("set DVSYNC_LIVE_CONFIG to a config.toml for a real environment to run live tests")
    client = DataverseClient.from_settings(load_settings(path))
    me = client.whoami()
    assert me.user_id and me.organization_id
    lead = client.get_table("lead")
    assert lead.entity_set_name == "leads" and lead.primary_id_attribute == "leadid"
    first = next(iter(client.iter_records("leads", ["fullname", "modifiedon"], page_size=5)), None)
    assert first is None or "leadid" in first
    assert client.throttle_state.burst_remaining is not None  # Dataverse reports its rate-limit headers
