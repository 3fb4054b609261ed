"""Service-protection limits, fault injection, TLS and the ``dvsync sandbox`` command (§6.1)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from conftest import SANDBOX_TOKEN, dataverse_session

from connector.sandbox import FaultConfig, Limits, SandboxConfig


class FakeMonotonic:
    """A seconds clock that advances only when told to, or by ``step`` on every read."""

    def __init__(self, step: float = 0.0):
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_request_count_limit_answers_429_with_retry_after(sandbox_factory):
    clock = FakeMonotonic()
    sb = sandbox_factory(config=SandboxConfig(limits=Limits(requests=3), monotonic=clock))
    s = dataverse_session(sb)
    for _ in range(3):
        assert s.get(sb.api_url + "WhoAmI").status_code == 200
    clock.now += 100
    r = s.get(sb.api_url + "WhoAmI")
    assert r.status_code == 429
    assert r.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 3 over time window of 300 seconds.",
    }
    assert r.headers["Retry-After"] == "200"  # the oldest request leaves the window in 200 s
    clock.now += 200
    assert s.get(sb.api_url + "WhoAmI").status_code == 200


def test_execution_time_limit(sandbox_factory):
    # Every clock read advances 0.25 s, so each request "runs" for a measurable time.
    clock = FakeMonotonic(step=0.25)
    sb = sandbox_factory(config=SandboxConfig(limits=Limits(execution_ms=600), monotonic=clock))
    s = dataverse_session(sb)
    statuses = [s.get(sb.api_url + "WhoAmI").status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and statuses[-1] == 429
    r = s.get(sb.api_url + "WhoAmI")
    assert r.json()["error"]["code"] == "0x80072321"
    assert r.json()["error"]["message"].startswith(
        "Combined execution time of incoming requests exceeded limit of 600  milliseconds over "
        "time window of 300"
    )
    assert int(r.headers["Retry-After"]) >= 1


def test_concurrency_limit(sandbox_factory):
    entered, gate = threading.Event(), threading.Event()

    def blocking_sleep(seconds: float) -> None:
        entered.set()
        gate.wait(10)

    config = SandboxConfig(limits=Limits(concurrent=1), faults=FaultConfig(slow=1.0), sleep=blocking_sleep)
    sb = sandbox_factory(config=config)
    results = []
    worker = threading.Thread(
        target=lambda: results.append(dataverse_session(sb).get(sb.api_url + "WhoAmI").status_code)
    )
    worker.start()
    assert entered.wait(10)
    second = dataverse_session(sb).get(sb.api_url + "WhoAmI")
    gate.set()
    worker.join(10)
    assert results == [200]
    assert second.status_code == 429
    assert second.json()["error"] == {
        "code": "0x80072326",
        "message": "Number of concurrent requests exceeded the limit of 1.",
    }


def _outcomes(sb, n: int, retry_after: int = 1) -> list[str]:
    out = []
    for _ in range(n):
        try:
            r = requests.get(
                sb.api_url + "WhoAmI", headers={"Authorization": f"Bearer {sb.token}"}, timeout=10
            )
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "0x80072322" and r.headers["Retry-After"] == str(
                    retry_after
                )
            if r.status_code == 503:
                assert r.json()["error"]["code"]
            out.append(str(r.status_code))
        except requests.exceptions.ChunkedEncodingError:
            out.append("truncated")
        except requests.exceptions.ConnectionError:
            out.append("dropped")
    return out


def test_fault_injection_is_deterministic_for_a_seed(sandbox_factory):
    slept: list[float] = []
    faults = FaultConfig(
        throttle=0.2,
        unavailable=0.2,
        drop=0.1,
        truncate=0.1,
        slow=0.2,
        slow_seconds=4.0,
        retry_after=3,
        seed=7,
    )
    first = _outcomes(sandbox_factory(config=SandboxConfig(faults=faults, sleep=slept.append)), 60, 3)
    second = _outcomes(sandbox_factory(config=SandboxConfig(faults=faults, sleep=lambda s: None)), 60, 3)
    assert first == second
    assert {"200", "429", "503", "dropped", "truncated"} <= set(first)
    assert slept and set(slept) == {4.0} and len(slept) < 60
    other = _outcomes(
        sandbox_factory(config=SandboxConfig(faults=FaultConfig(throttle=0.2, unavailable=0.2, seed=8))), 60
    )
    assert other != first


def test_tls_serves_https_with_its_own_certificate(sandbox_factory):
    sb = sandbox_factory(tls=True)
    assert sb.url.startswith("https://127.0.0.1:") and sb.ca_bundle.exists()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(sb.api_url + "WhoAmI", timeout=10)
    r = dataverse_session(sb).get(sb.api_url + "WhoAmI")
    assert r.status_code == 200 and r.json()["@odata.context"].startswith("https://")


def test_paths_outside_the_api_and_ground_truth_are_not_served(sandbox, sandbox_session):
    assert (sandbox.ground_truth_dir / "parameters.json").exists()
    for path in ("ground_truth/parameters.json", "sandbox.sqlite", "api/data/v8.0/leads"):
        r = sandbox_session.get(f"{sandbox.url}/{path}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "0x8006088a"


def test_kept_alive_connections_are_closed_when_the_sandbox_stops(sandbox_factory):
    sb = sandbox_factory()
    session = dataverse_session(sb)
    assert session.get(sb.api_url + "WhoAmI").status_code == 200  # the connection is now kept alive
    sb.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(sb.api_url + "WhoAmI", timeout=5)


def test_unsupported_methods_get_a_dataverse_shaped_error(sandbox):
    r = requests.request("OPTIONS", sandbox.api_url + "leads", timeout=10)
    assert r.status_code == 501
    assert r.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    assert r.json()["error"]["code"] == "0x0"


def test_repr_never_shows_the_token(sandbox):
    assert sandbox.token not in repr(sandbox)


def test_cli_prints_url_and_token_and_stops_on_sigterm(sandbox_template: Path, tmp_path: Path):
    data = tmp_path / "cli-data"
    data.mkdir()
    shutil.copy2(sandbox_template / "sandbox.sqlite", data / "sandbox.sqlite")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.cli.main",
            "sandbox",
            "--port",
            "0",
            "--data",
            str(data),
            "--token",
            SANDBOX_TOKEN,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=root,
        env=env,
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        url = next(line.split()[-1] for line in lines if "environment URL" in line)
        assert url.startswith("http://127.0.0.1:")
        assert f"bearer token:    {SANDBOX_TOKEN}" in text
        r = requests.get(
            url + "/api/data/v9.2/WhoAmI", headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}, timeout=10
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        rest = proc.stdout.read()
        assert proc.wait(timeout=20) == 0
        assert "sandbox stopped." in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_rejects_bad_options():
    from jobs.cli.main import main

    assert main(["sandbox", "--tracking-off", "leads"]) == 2  # entity set instead of logical name
    with pytest.raises(SystemExit):
        main(["sandbox", "--fault-429", "1.5"])
    assert main(["sandbox", "--fault-429", "0.6", "--fault-503", "0.6"]) == 2
    assert main(["sandbox", "--port", "70000"]) == 2


def test_a_data_path_that_is_a_file_or_not_a_database_is_a_clear_error(tmp_path):
    from connector.sandbox import Sandbox
    from core.errors import ConfigError

    a_file = tmp_path / "notadir"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        Sandbox(a_file).start()
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "sandbox.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match="not a sandbox database"):
        Sandbox(bogus).start()
