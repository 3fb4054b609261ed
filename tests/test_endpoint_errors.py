"""A URL that cannot work fails at once, naming the cause under [dataverse.url]; passing faults retry.

Connection refused, a host that does not resolve and an https URL served by a plain-http server
(the sandbox without --tls) are configuration mistakes: one line, exit code 2, within seconds, no
retry. Timeouts, resets and 5xx keep the retry policy (tests/test_http.py).
"""

from __future__ import annotations

import socket

import pytest
import requests
import requests.adapters

from connector.errors import EndpointError, TransportError
from connector.http import HttpClient, RetryPolicy, _endpoint_error
from core.defaults import mappings_dir
from jobs.cli.main import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path, url: str):
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{url}"\n[auth]\nmode = "token"\n'
        f'[mirror]\npath = "{(tmp_path / "m.sqlite").as_posix()}"\n'
        f'[mappings]\ndir = "{mappings_dir().as_posix()}"\n',
        encoding="utf-8",
    )
    return config


def _client(url: str, sleeps: list[float]) -> HttpClient:
    policy = RetryPolicy(max_attempts=8, budget_seconds=300, sleep=sleeps.append)
    return HttpClient(url, lambda: "t", retry=policy)


def test_connection_refused_is_not_retried_and_names_host_and_port():
    port = _free_port()
    sleeps: list[float] = []
    with pytest.raises(EndpointError) as caught:
        _client(f"http://127.0.0.1:{port}", sleeps).request("GET", "WhoAmI")
    assert sleeps == []  # one attempt, no back-off
    text = str(caught.value)
    assert text.startswith("[dataverse.url]: ") and f"127.0.0.1:{port} (connection refused)" in text
    assert caught.value.exit_code == 2


def test_https_against_a_plain_http_server_says_so_rather_than_blaming_the_ca_bundle(sandbox):
    https = sandbox.url.replace("http://", "https://")
    sleeps: list[float] = []
    with pytest.raises(EndpointError) as caught:
        _client(https, sleeps).request("GET", "WhoAmI")
    text = str(caught.value)
    assert sleeps == [] and "does not speak it" in text and "use http://" in text
    assert "ca_bundle" not in text


def test_an_unknown_host_is_a_dns_problem():
    exc = requests.ConnectionError(
        "HTTPSConnectionPool(host='contoso.crm4.dynamics.invalid', port=443): Max retries exceeded "
        "(Caused by NameResolutionError(\"Failed to resolve 'contoso.crm4.dynamics.invalid'\"))"
    )
    error = _endpoint_error(exc, "https://contoso.crm4.dynamics.invalid/api/data/v9.2/WhoAmI")
    assert error is not None and "`contoso.crm4.dynamics.invalid` does not resolve (DNS)" in str(error)


def test_a_reset_or_a_timeout_stays_a_passing_fault():
    reset = requests.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'reset by peer'))")
    assert _endpoint_error(reset, "https://x.crm.dynamics.com/") is None
    assert _endpoint_error(requests.ReadTimeout("read timed out"), "https://x.crm.dynamics.com/") is None
    assert issubclass(TransportError, Exception) and not issubclass(TransportError, EndpointError)


@pytest.mark.parametrize("command", [["check"], ["sync"], ["provision"], ["run"]])
def test_every_command_reports_a_refused_url_in_one_line_with_exit_code_2(
    command, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", "not-a-secret")
    config = _config(tmp_path, f"http://127.0.0.1:{_free_port()}")
    # A refused URL is a wrong setting, not a passing fault: it must fail on the first attempt,
    # never after minutes of retry back-off. Counting the attempts says so without timing the test.
    attempts: list[str] = []
    send = requests.adapters.HTTPAdapter.send

    def counted(adapter, request, *args, **kwargs):
        attempts.append(request.url)
        return send(adapter, request, *args, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", counted)
    code = main(["--config", str(config), *command])
    assert len(attempts) == 1, attempts
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert text.count("connection refused") == 1 and "[dataverse.url]" in text
    assert "[auth]" not in text and "Traceback" not in text
