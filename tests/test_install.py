"""From the repository to an admin's server: the wheel, its shipped defaults, and `dvsync init`.

The slow tests build a wheel from the repository, install it into a clean virtual environment
(its dependencies borrowed from the test environment, dvsync itself only from the wheel) and run
``dvsync init`` and ``dvsync demo`` from an empty folder, as an admin would after ``pip install``.
That one demo (sandbox, provisioning, a full run that writes, a second that writes nothing) is also
where the demo's results are checked: running it a second time in-process would check nothing more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from connector.sandbox import Sandbox
from core.defaults import example_config, mappings_dir
from core.errors import DvsyncError
from jobs.cli.main import main
from jobs.service.workdir import commented_config, init_workdir

ROOT = Path(__file__).resolve().parents[1]
# What the build reads; copied so the build's own litter (build/, *.egg-info) stays out of the repo.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "config.example.toml")
BUILD_TREES = ("core", "connector", "jobs", "mappings")


def test_a_checkout_reads_the_repositorys_own_files_and_keeps_one_copy():
    assert mappings_dir() == ROOT / "mappings"
    assert example_config() == ROOT / "config.example.toml"
    # One source of truth: no mapping file is duplicated anywhere else in the source packages.
    names = {p.name for p in (ROOT / "mappings").glob("*.toml")}
    packages = ("core", "connector", "jobs")
    copies = [p for pkg in packages for p in (ROOT / pkg).rglob("*.toml") if p.name in names]
    assert copies == []


def test_init_comments_every_key_and_keeps_the_sections():
    text = commented_config(example_config().read_text(encoding="utf-8"))
    active = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert active and all(line.startswith("[") and "." not in line for line in active)
    assert "# url = " in text and "# dry_run" in text and "# [schedule.sets.nightly]" in text


def test_init_writes_a_folder_that_check_accepts_against_the_sandbox(
    sandbox: Sandbox, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "dvsync"
    report = init_workdir(folder)
    assert (folder / "config.toml").is_file() and (folder / ".gitignore").is_file()
    assert sorted(p.name for p in (folder / "mappings").iterdir()) == sorted(
        p.name for p in mappings_dir().glob("*.toml")
    )
    assert len(report.written) == 2 + len(list(mappings_dir().glob("*.toml")))
    ignored = (folder / ".gitignore").read_text()
    assert "/.dvsync/" in ignored and ".env" in ignored and "*.pem" in ignored

    monkeypatch.chdir(folder)
    monkeypatch.delenv("DVSYNC_CONFIG", raising=False)
    monkeypatch.setenv("DVSYNC__DATAVERSE__URL", sandbox.url)
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    monkeypatch.setenv("DVSYNC__WRITEBACK__SOLUTION", "dvsync")
    assert main(["check"]) == 0, capsys.readouterr().out
    assert "All checks passed" in capsys.readouterr().out


def test_init_never_overwrites_an_edited_folder_without_force(tmp_path):
    init_workdir(tmp_path)
    (tmp_path / "mappings" / "lead.toml").write_text("# edited\n")
    with pytest.raises(DvsyncError, match=r"already has config.toml.*--force"):
        init_workdir(tmp_path)
    assert (tmp_path / "mappings" / "lead.toml").read_text() == "# edited\n"
    init_workdir(tmp_path, force=True)
    assert (tmp_path / "mappings" / "lead.toml").read_text() == (mappings_dir() / "lead.toml").read_text()


def _build_wheel(work: Path) -> Path:
    source = work / "src"
    source.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    for tree in BUILD_TREES:
        shutil.copytree(ROOT / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__"))
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("dvsync-*.whl")
    return wheel


def _clean_venv(work: Path, wheel: Path) -> Path:
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    # The dependencies (pandas, scipy, ...) come from the test environment's site-packages; a path
    # line in a .pth does not run that folder's own .pth files, so dvsync's editable hook stays out.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wheel installed in a clean venv, then `dvsync init` and `dvsync demo --json` run from an
    empty folder: the demo's one full run serves both tests below."""
    work = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(work)
    venv = _clean_venv(work, wheel)
    empty = work / "admin"
    empty.mkdir()
    temp = work / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DVSYNC") and k != "PYTHONPATH"}
    env.update(TMPDIR=str(temp), HOME=str(work / "home"), COLUMNS="200")
    dvsync = str(venv / "bin" / "dvsync")

    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import core, jobs; print(core.__file__, jobs.__file__)"],
        cwd=empty,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    init = subprocess.run([dvsync, "init"], cwd=empty, env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    mappings_after_init = (empty / "mappings" / "scoring.toml").is_file()
    demo = subprocess.run(
        [dvsync, "demo", "--json"], cwd=empty, env=env, capture_output=True, text=True, timeout=240
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    return {
        "venv": venv,
        "where": where,
        "mappings_after_init": mappings_after_init,
        "report": json.loads(demo.stdout),
        "temp": temp,
        "empty": empty,
    }


@pytest.mark.slow
def test_the_wheel_runs_init_and_demo_from_an_empty_folder(installed):
    assert str(ROOT) not in installed["where"] and str(installed["venv"]) in installed["where"]  # wheel only
    assert installed["mappings_after_init"]
    report = installed["report"]
    assert report["first"]["ok"] and report["provisioned"] > 30
    assert report["shown"]["segments"]  # the default RFM segment map came from the wheel
    assert list(installed["temp"].iterdir()) == []  # the demo's temporary folder is gone
    assert sorted(p.name for p in installed["empty"].iterdir()) == [".gitignore", "config.toml", "mappings"]


@pytest.mark.slow
def test_the_demo_computes_writes_and_then_writes_nothing(installed):
    report = installed["report"]
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
    # every job's results are reused; lead handling too, unless the clock passed the horizon of
    # its first results between the runs (a waiting lead reached its response target).
    handling = second["jobs"]["lead_handling"]
    expired = "reused_from_run" not in handling and pd.Timestamp(handling["computed_at"]) >= pd.Timestamp(
        first["jobs"]["lead_handling"]["valid_until"]
    )
    reused = {name: "reused_from_run" in job for name, job in second["jobs"].items()}
    assert reused == {
        "scoring": True,
        "duplicates": True,
        "rfm": True,
        "clv": True,
        "lead_handling": not expired,
    }

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
