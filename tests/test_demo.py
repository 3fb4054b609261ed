"""``dvsync demo`` end to end: sandbox, provisioning, a full run that writes, a second that writes nothing."""

from __future__ import annotations

import pytest

from jobs.cli.walkthrough import run_demo


@pytest.mark.slow
def test_demo_computes_writes_and_then_writes_nothing(tmp_path):
    report = run_demo(data_dir=tmp_path / "demo", quiet=True, progress=False)
    assert report["provisioned"] > 30
    first, second = report["first"], report["second"]
    assert first["ok"], first["error"]
    for table in ("lead", "account", "contact"):
        assert first["tables"][table]["written"] > 50
    assert {name: job["status"] for name, job in first["jobs"].items()} == {
        "scoring": "ok",
        "duplicates": "ok",
        "rfm": "ok",
        "clv": "ok",
        "lead_handling": "ok",  # speed-to-lead, stages, re-engagement ride with scoring
    }
    assert second["ok"] and second["planned"] == 0
    assert all(t["written"] == 0 for t in second["tables"].values())
    assert all(t["mode"] == "delta" for t in second["tables"].values())
    # Our own writes came back (modifiedon and dvsync's columns changed, nothing a job reads):
    # every job's results are reused. Lead handling moves with the clock and always runs.
    reused = {name: "reused_from_run" in job for name, job in second["jobs"].items()}
    assert reused == {"scoring": True, "duplicates": True, "rfm": True, "clv": True, "lead_handling": False}

    shown = report["shown"]
    leads = shown["top_leads"]
    assert len(leads) == 10 and all(lead["top reason"] for lead in leads)
    assert [lead["score"] for lead in leads] == sorted((lead["score"] for lead in leads), reverse=True)
    existing = shown["existing_customers"]
    assert existing["counts"]["contact"] >= 20 and existing["counts"]["account"] > 50
    assert len(existing["examples"]) == 5
    assert all("<" in row["already contact"] and row["match %"] >= 50 for row in existing["examples"])
    assert shown["duplicate_groups"]["groups"]["lead"] > 10
    assert all(len(group["records"]) >= 2 for group in shown["duplicate_groups"]["examples"])
    assert sum(shown["segments"].values()) > 1000 and "Champions" in shown["segments"]
    values = [c["predicted_12m"] for c in shown["top_customers"]]
    assert values == sorted(values, reverse=True) and values[0] > 0


def test_demo_command_exit_code_and_json(tmp_path, capsys, monkeypatch):
    import json

    from jobs.cli import demo as cli_demo
    from jobs.cli.main import main

    fake = {
        "first": {"ok": True},
        "second": {"ok": True, "tables": {"lead": {"written": 0}}},
        "data_dir": str(tmp_path),
    }
    monkeypatch.setattr(cli_demo, "run_demo", lambda **kwargs: fake)
    assert main(["demo", "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path)
    fake["second"]["tables"]["lead"]["written"] = 3  # a second run that writes is a failed demo
    assert main(["demo", "--json"]) == 1
