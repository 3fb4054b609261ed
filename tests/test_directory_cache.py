"""The org's directory kept in the mirror: read again only when the copy is old or lacks something."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from connector.errors import DataverseError
from jobs.leads.engagement import load_routing
from jobs.service.directory_cache import directory_for_run
from jobs.service.mirror import Mirror
from jobs.service.routing import OrgDirectory

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _directory(users: list[str]) -> OrgDirectory:
    return OrgDirectory(
        users=pd.DataFrame(
            {"id": users, "name": [f"User {u}" for u in users], "enabled": True, "person": True}
        ),
        teams=pd.DataFrame({"id": ["t1"], "name": ["Inbox"]}),
        members=pd.DataFrame({"team_id": ["t1"] * len(users), "user_id": users}),
    )


class _Org:
    def __init__(self) -> None:
        self.users = ["u1", "u2"]
        self.reads = 0

    def read(self, _client: object) -> OrgDirectory:
        self.reads += 1
        return _directory(list(self.users))


def _leads(owners: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"lead_id": [f"l{i}" for i in range(len(owners))], "status": "open", "owner_id": owners}
    )


def test_the_copy_is_used_until_it_is_old_or_an_owner_is_new(tmp_path: Path) -> None:
    org = _Org()
    with Mirror(tmp_path / "m.sqlite") as mirror:

        def read(leads: pd.DataFrame, now: datetime = NOW, **kwargs: object):
            return directory_for_run(
                None, mirror, leads=leads, activities=None, routing=None, now=now, reader=org.read, **kwargs
            )

        first = read(_leads(["u1", "t1"]))
        assert (first.source, org.reads) == ("dataverse", 1)
        again = read(_leads(["u1", "t1", "u2"]), NOW + timedelta(hours=23))
        assert (again.source, org.reads) == ("mirror", 1)
        assert list(again.directory.users["id"]) == ["u1", "u2"]
        # A user created since owns a lead: read again, then known.
        org.users.append("u3")
        new_owner = read(_leads(["u3"]), NOW + timedelta(hours=1))
        assert (new_owner.source, org.reads) == ("dataverse", 2)
        assert "owner" in new_owner.reason
        assert read(_leads(["u3"]), NOW + timedelta(hours=2)).source == "mirror"
        # An owner the org does not know either (a deleted user) does not cause a read every run.
        read(_leads(["gone"]), NOW + timedelta(hours=3))
        assert org.reads == 3
        assert read(_leads(["gone"]), NOW + timedelta(hours=4)).source == "mirror"
        # Too old (the limit is a setting), or a fresh read asked for.
        assert read(_leads([]), NOW + timedelta(hours=30), max_age=timedelta(hours=24)).reason
        assert org.reads == 4
        assert read(_leads([]), NOW + timedelta(hours=30), refresh=True).source == "dataverse"
        assert org.reads == 5


def test_leads_waiting_to_be_routed_read_the_teams_afresh_once(tmp_path: Path) -> None:
    (tmp_path / "routing.toml").write_text(
        '[unassigned]\nteam = "Inbox"\n\n[[rule]]\nname = "all"\nassign = "round_robin"\nteam = "Inbox"\n',
        encoding="utf-8",
    )
    routing = load_routing(tmp_path / "routing.toml")
    org = _Org()
    with Mirror(tmp_path / "m.sqlite") as mirror:

        def read(leads: pd.DataFrame):
            return directory_for_run(
                None, mirror, leads=leads, activities=None, routing=routing, now=NOW, reader=org.read
            )

        read(_leads(["u1"]))
        assert read(_leads(["u1"])).source == "mirror"
        waiting = _leads(["u1", "t1"])
        assert read(waiting).reason == "1 lead(s) to route"
        # Not routed by any rule (it waits on): no read on every run for it.
        assert read(waiting).source == "mirror"
        assert org.reads == 2


def test_an_unreadable_org_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    def fail(_client: object) -> OrgDirectory:
        raise DataverseError("403 Forbidden: no read access on teams")

    with Mirror(tmp_path / "m.sqlite") as mirror:
        found = directory_for_run(
            None, mirror, leads=_leads(["u1"]), activities=None, routing=None, now=NOW, reader=fail
        )
    assert found.directory is None
    assert "403" in (found.problem or "")


@pytest.mark.parametrize("payload", [{"directory": "not a directory"}, "junk"])
def test_a_copy_that_cannot_be_used_is_read_again(tmp_path: Path, payload: object) -> None:
    org = _Org()
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.save_job_state("org_directory", "", None, payload)
        found = directory_for_run(
            None, mirror, leads=_leads(["u1"]), activities=None, routing=None, now=NOW, reader=org.read
        )
    assert (found.source, org.reads) == ("dataverse", 1)
