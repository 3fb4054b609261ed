"""Kept table definitions validated by ``RetrieveMetadataChanges`` version stamps once they expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from connector import ColumnSpec
from connector.client import DataverseClient
from connector.metadata_changes import MetadataChanges
from jobs.service.metadata_cache import CachedMetadataClient
from jobs.service.mirror import Mirror


def test_the_sandbox_reports_the_tables_changed_since_a_stamp(sandbox):
    with DataverseClient(sandbox.url, lambda: sandbox.token) as client:
        first = client.metadata_changes(["lead", "account"])
        assert first.changed == {"lead", "account"} and not first.expired  # no stamp: all of them
        assert client.metadata_changes(["lead", "account"], first.stamp).changed == set()
        client.create_column("lead", ColumnSpec("dvs_Probe", "Integer", "Probe"), solution="dvsync")
        after = client.metadata_changes(["lead", "account"], first.stamp)
        assert after.changed == {"lead"} and after.stamp != first.stamp
        assert client.metadata_changes(["lead"], after.stamp).changed == set()
        stale = client.metadata_changes(["lead", "account"], "999999!01/01/2030 00:00:00")
        assert stale.expired and stale.changed == {"lead", "account"}


class _Org:
    """Definitions and version stamps: ``changed`` tables are reported by the next stamp check."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.checks: list[tuple[list[str], str | None]] = []
        self.changed: set[str] = set()
        self.version = 1

    def get_table(self, name: str) -> SimpleNamespace:
        self.reads.append(name)
        return SimpleNamespace(logical_name=name, attributes={f"{name}id": 1})

    def metadata_changes(self, tables, stamp=None) -> MetadataChanges:
        self.checks.append((list(tables), stamp))
        if stamp == "expired":
            return MetadataChanges(frozenset(tables), f"{self.version}!x", expired=True)
        changed = frozenset(tables) if stamp is None else frozenset(self.changed & set(tables))
        self.changed -= set(tables)
        self.version += 1
        return MetadataChanges(changed, f"{self.version}!x")


def test_expired_definitions_are_checked_in_one_request_and_only_changed_ones_reread(tmp_path):
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    org = _Org()
    needed = {"lead": {"leadid"}, "account": {"accountid"}}
    with Mirror(tmp_path / "m.sqlite", clock=lambda: now[0]) as mirror:

        def run(**kwargs) -> CachedMetadataClient:
            cached = CachedMetadataClient(org, mirror, needed=needed, clock=lambda: now[0], **kwargs)
            for table in ("lead", "account"):
                cached.get_table(table)
            return cached

        run()
        assert org.reads == ["lead", "account"] and len(org.checks) == 1  # one stamp before reading
        now[0] += timedelta(minutes=30)
        run()
        assert len(org.reads) == 2 and len(org.checks) == 1  # fresh: no request at all
        now[0] += timedelta(hours=2)
        org.changed = {"account"}
        checked = run()
        assert checked.stamp_checks == 1 and sorted(org.checks[-1][0]) == ["account", "lead"]
        assert org.reads[2:] == ["account"]  # lead unchanged since its stamp: kept
        now[0] += timedelta(minutes=30)
        run()
        assert len(org.reads) == 3 and len(org.checks) == 2  # the check renewed both for an hour
        for table in ("lead", "account"):  # a stamp the server no longer honours
            mirror.cache_definition(table, mirror.cached_definition(table)[0], stamp="expired")
        now[0] += timedelta(hours=2)
        run()
        assert org.reads[3:] == ["lead", "account"]  # an expired stamp: reload everything
        run(refresh=True)
        assert org.reads[5:] == ["lead", "account"]  # --refresh-metadata
