"""The checks bench/sandbox_clients.py runs inside the throwaway environment, one JSON line each.

Imports the public clients, so it runs only there (with DV_URL, DV_TOKEN, DV_ONLY and
REQUESTS_CA_BUNDLE set by the parent), never in the project's environment.
"""

import json
import os
import time

URL, TOKEN, ONLY = os.environ["DV_URL"], os.environ["DV_TOKEN"], os.environ["DV_ONLY"].split(",")


def check(client, name, fn):
    try:
        detail = fn()
        print(
            json.dumps({"client": client, "check": name, "ok": True, "detail": str(detail)[:200]}), flush=True
        )
    except Exception as exc:  # every failure is reported, never hidden
        text = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"client": client, "check": name, "ok": False, "detail": text[:300]}), flush=True)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def sdk():
    from azure.core.credentials import AccessToken
    from PowerPlatform.Dataverse.client import DataverseClient

    class Token:
        def get_token(self, *scopes, **kwargs):
            return AccessToken(TOKEN, int(time.time()) + 3600)

    client = DataverseClient(URL, Token())
    state = {}
    check(
        "sdk", "tables.list", lambda: expect(any("lead" in str(t) for t in client.tables.list()), "no lead")
    )
    check("sdk", "tables.get", lambda: expect(client.tables.get("account"), "no account table"))

    def create():
        state["id"] = client.records.create("account", {"name": "SDK check"})
        return state["id"]

    check("sdk", "records.create", create)
    check(
        "sdk",
        "records.get",
        lambda: expect(
            client.records.get("account", state["id"], select=["name"])["name"] == "SDK check", "name"
        ),
    )
    check(
        "sdk",
        "records.update",
        lambda: client.records.update("account", state["id"], {"telephone1": "555-0199"}),
    )

    def listing():
        rows = [
            r
            for page in client.records.get("account", filter="statecode eq 0", select=["name"], top=20)
            for r in (page if isinstance(page, list) else [page])
        ]
        expect(rows, "no rows")
        return len(rows)

    check("sdk", "records.get (query)", listing)

    def bulk():
        state["ids"] = client.records.create("account", [{"name": f"Bulk {i}"} for i in range(5)])
        client.records.update("account", state["ids"], {"telephone1": "555-0100"})
        return len(state["ids"])

    check("sdk", "bulk create+update (CreateMultiple/UpdateMultiple)", bulk)
    check(
        "sdk",
        "bulk delete (BulkDelete)",
        lambda: client.records.delete("account", state["ids"], use_bulk_delete=True),
    )
    check("sdk", "records.delete", lambda: client.records.delete("account", state["id"]))
    xml = '<fetch top="3"><entity name="account"><attribute name="name"/></entity></fetch>'
    check(
        "sdk",
        "query.fetchxml",
        lambda: expect(len(list(client.query.fetchxml(xml).execute())) == 3, "not 3 rows"),
    )
    check("sdk", "query.sql", lambda: client.query.sql("SELECT TOP 5 name FROM account"))

    def alternate_key():
        client.tables.create_alternate_key("contact", "new_contact_email2_key", ["emailaddress2"])
        keys = client.tables.get_alternate_keys("contact")
        expect(keys, "no keys listed")
        client.records.upsert(
            "contact",
            [{"alternate_key": {"emailaddress2": "sdk@example.com"}, "record": {"lastname": "Upserted"}}],
        )

    check("sdk", "alternate key + upsert", alternate_key)
    check("sdk", "tables.list_relationships", lambda: client.tables.list_table_relationships("account"))
    check("sdk", "tables.create", lambda: client.tables.create("new_Gadget", {"new_Size": "string"}))


def dvapi():
    import requests
    from dataverse_api import DataverseClient

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {TOKEN}"})
    client = DataverseClient(session=session, environment_url=URL)
    state = {}

    def entity():
        state["lead"] = client.entity("lead")
        expect(state["lead"].entity_set_name == "leads", "entity set")
        expect(state["lead"].supports_create_multiple, "CreateMultiple not detected")
        return state["lead"].primary_id_attr

    check("dvapi", "entity (metadata, keys, sdkmessagefilters, relationships)", entity)
    check(
        "dvapi", "read", lambda: expect(len(state["lead"].read(select=["fullname"], top=10)) == 10, "not 10")
    )
    check(
        "dvapi",
        "read paged",
        lambda: expect(
            len(state["lead"].read(select=["fullname"], page_size=500, filter="statecode eq 1")) > 500,
            "paging",
        ),
    )

    def create():
        responses = state["lead"].create(
            [{"lastname": f"Dv {i}", "subject": "dvapi"} for i in range(3)], mode="multiple"
        )
        expect(all(r.ok for r in responses), [r.text for r in responses])

    check("dvapi", "create (CreateMultiple)", create)

    def batch_create():
        responses = state["lead"].create(
            [{"lastname": f"Batch {i}", "subject": "dvapi-batch"} for i in range(3)], mode="batch"
        )
        expect(all(r.ok for r in responses), [r.text for r in responses])

    check("dvapi", "create ($batch)", batch_create)

    def delete():
        rows = state["lead"].read(select=["leadid"], filter="subject eq 'dvapi-batch'")
        responses = state["lead"].delete(ids=[r["leadid"] for r in rows])
        expect(all(r.ok for r in responses), "delete failed")
        return len(rows)

    check("dvapi", "delete", delete)

    def altkey_upsert():
        # dataverse-api 1.4.3's add_alternate_key fails before sending (its Label dump raises, and it
        # posts to EntityMetadata(...)/Keys), so the key is created over the Web API with its session.
        created = session.post(
            f"{URL}/api/data/v9.2/EntityDefinitions(LogicalName='contact')/Keys",
            json={"SchemaName": "new_dvapi_email2_key", "KeyAttributes": ["emailaddress2"]},
        )
        expect(created.status_code == 204, created.text)
        contact = client.entity("contact")
        expect("new_dvapi_email2_key" in contact.alternate_keys, "key not listed")
        responses = contact.upsert(
            [{"emailaddress2": "dvapi@example.com", "lastname": "Keyed"}], altkey_name="new_dvapi_email2_key"
        )
        expect(all(r.ok for r in responses), [r.text for r in responses])

    check("dvapi", "alternate key + upsert", altkey_upsert)


def airbyte():
    import logging

    import requests

    # The CDK sends prepared requests with Session.send, which skips REQUESTS_CA_BUNDLE; trust the
    # sandbox's self-signed certificate there too (a real org's certificate is publicly trusted).
    send = requests.Session.send

    def trusting_send(self, request, **kwargs):
        if kwargs.get("verify", True) is True:
            kwargs["verify"] = os.environ["REQUESTS_CA_BUNDLE"]
        return send(self, request, **kwargs)

    requests.Session.send = trusting_send

    from airbyte_cdk.models import (
        ConfiguredAirbyteCatalog,
        ConfiguredAirbyteStream,
        DestinationSyncMode,
        SyncMode,
        Type,
    )
    from source_microsoft_dataverse import dataverse as auth_module
    from source_microsoft_dataverse.source import SourceMicrosoftDataverse

    auth_module.MicrosoftOauth2Authenticator.get_access_token = lambda self: TOKEN
    config = {
        "url": URL,
        "tenant_id": "sandbox",
        "client_id": "sandbox",
        "client_secret_value": "sandbox",
        "odata_maxpagesize": 1000,
    }
    logger = logging.getLogger("airbyte")
    source = SourceMicrosoftDataverse()
    state = {}
    check("airbyte", "check", lambda: expect(source.check_connection(logger, config)[0], "check failed"))

    def discover():
        catalog = source.discover(logger, config)
        state["streams"] = {s.name: s for s in catalog.streams}
        expect("lead" in state["streams"], "no lead stream")
        return len(state["streams"])

    check("airbyte", "discover", discover)

    def run(mode, stream_state=None):
        stream = state["streams"]["account"]
        configured = ConfiguredAirbyteStream(
            stream=stream,
            sync_mode=mode,
            destination_sync_mode=DestinationSyncMode.append,
            cursor_field=["modifiedon"] if mode == SyncMode.incremental else None,
        )
        records, states = 0, []
        for message in source.read(
            logger, config, ConfiguredAirbyteCatalog(streams=[configured]), stream_state
        ):
            if message.type == Type.RECORD:
                records += 1
            elif message.type == Type.STATE:
                states.append(message.state)
        return records, states

    def full():
        records, _ = run(SyncMode.full_refresh)
        expect(records > 0, "no records")
        return records

    check("airbyte", "full refresh read", full)

    def incremental():
        records, states = run(SyncMode.incremental)
        expect(records > 0 and states, "no records or no state")
        again, _ = run(SyncMode.incremental, [states[-1]])
        expect(again == 0, f"second incremental read returned {again} records")
        return records

    check("airbyte", "incremental read (delta link)", incremental)


for name, fn in (("sdk", sdk), ("dvapi", dvapi), ("airbyte", airbyte)):
    if name in ONLY:
        try:
            fn()
        except Exception as exc:
            print(
                json.dumps(
                    {
                        "client": name,
                        "check": "import/setup",
                        "ok": False,
                        "detail": f"{type(exc).__name__}: {exc}"[:300],
                    }
                ),
                flush=True,
            )
