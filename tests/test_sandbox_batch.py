"""``$batch`` over real HTTP: multipart format, change sets, Content-ID, continue-on-error, limits (§5.7).

The request bodies are written here by hand, in the exact shape of Microsoft's examples.
"""

from __future__ import annotations

import json
import re
import uuid
from email.parser import BytesParser
from email.policy import HTTP


def _part(
    method: str,
    url: str,
    body: dict | None = None,
    content_id: str | None = None,
    headers: dict | None = None,
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding:binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines += ["Content-Type: application/json;type=entry", "", json.dumps(body)]
    else:
        lines += [""]
    return "\r\n".join(lines)


def _batch(parts: list[str | list[str]]) -> tuple[str, bytes]:
    boundary = f"batch_{uuid.uuid4()}"
    chunks = []
    for item in parts:
        if isinstance(item, list):
            cs = f"changeset_{uuid.uuid4()}"
            inner = "".join(f"--{cs}\r\n{p}\r\n" for p in item) + f"--{cs}--\r\n"
            chunks.append(f"--{boundary}\r\nContent-Type: multipart/mixed;boundary={cs}\r\n\r\n{inner}")
        else:
            chunks.append(f"--{boundary}\r\n{item}\r\n")
    return boundary, ("".join(chunks) + f"--{boundary}--\r\n").encode()


def _responses(r) -> list[tuple[int, dict, str]]:
    """Parse a batch response into (status, headers, body) in order, flattening change sets."""
    assert r.status_code == 200
    ctype = r.headers["Content-Type"]
    assert re.fullmatch(r"multipart/mixed; boundary=batchresponse_[0-9a-f-]{36}", ctype)
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + r.content)
    out = []
    for part in message.iter_parts():
        subparts = list(part.iter_parts()) if part.is_multipart() else [part]
        for sub in subparts:
            payload = sub.get_payload(decode=True)
            head, _, body = payload.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            status = int(lines[0].split()[1])
            headers = dict(line.split(":", 1) for line in lines[1:])
            headers = {k.strip(): v.strip() for k, v in headers.items()}
            if sub.get("Content-ID"):
                headers["Content-ID"] = sub["Content-ID"]
            out.append((status, headers, body.decode()))
    return out


def _post(session, sb, parts, prefer=None):
    boundary, body = _batch(parts)
    headers = {"Content-Type": f"multipart/mixed;boundary={boundary}"}
    if prefer:
        headers["Prefer"] = prefer
    return session.post(sb.api_url + "$batch", data=body, headers=headers)


def test_changeset_with_content_id_references_and_a_get(sandbox, sandbox_session):
    api = sandbox.api_url
    parts = [
        [
            _part("POST", f"{api}accounts", {"name": "Batch Parent"}, content_id="1"),
            _part(
                "POST",
                f"{api}contacts",
                {"lastname": "Batch Child", "parentcustomerid_account@odata.bind": "$1"},
                content_id="2",
            ),
            _part("PATCH", "$1", {"description": "patched through $1"}, content_id="3"),
        ],
        _part(
            "GET",
            "accounts?$select=name&$filter=name eq 'Batch Parent'",
            headers={"Accept": "application/json"},
        ),
    ]
    r = _post(sandbox_session, sandbox, parts)
    responses = _responses(r)
    assert [s for s, _, _ in responses] == [204, 204, 204, 200]
    created = responses[0][1]
    assert created["Content-ID"] == "1"
    assert created["OData-EntityId"] == created["Location"]
    account_id = created["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    child = sandbox_session.get(responses[1][1]["OData-EntityId"] + "?$select=_parentcustomerid_value").json()
    assert child["_parentcustomerid_value"] == account_id
    assert sandbox_session.get(created["OData-EntityId"]).json()["description"] == "patched through $1"
    listing = json.loads(responses[3][2])
    assert [v["accountid"] for v in listing["value"]] == [account_id]


def test_failed_changeset_rolls_back_everything(sandbox, sandbox_session):
    api = sandbox.api_url
    parts = [
        [
            _part("POST", f"{api}accounts", {"name": "Should vanish"}, content_id="1"),
            _part(
                "PATCH",
                f"{api}accounts({uuid.uuid4()})",
                {"name": "missing"},
                headers={"If-Match": "*"},
                content_id="2",
            ),
        ]
    ]
    responses = _responses(_post(sandbox_session, sandbox, parts))
    assert len(responses) == 1
    status, headers, body = responses[0]
    assert status == 404 and json.loads(body)["error"]["code"] == "0x80040217"
    assert headers["REQ_ID"]
    check = sandbox_session.get(api + "accounts?$select=name&$filter=name eq 'Should vanish'").json()
    assert check["value"] == []


def test_stop_at_first_failure_unless_continue_on_error(sandbox, sandbox_session):
    api = sandbox.api_url
    ids = [v["accountid"] for v in sandbox_session.get(api + "accounts?$select=name&$top=3").json()["value"]]
    parts = [
        _part("PATCH", f"accounts({ids[0]})", {"name": "one"}, headers={"If-Match": "*"}),
        _part("PATCH", f"accounts({ids[1]})", {"name": "x" * 500}, headers={"If-Match": "*"}),
        _part("PATCH", f"accounts({ids[2]})", {"name": "three"}, headers={"If-Match": "*"}),
    ]
    stopped = _responses(_post(sandbox_session, sandbox, parts))
    assert [s for s, _, _ in stopped] == [204, 400]
    assert json.loads(stopped[1][2])["error"]["code"] == "0x80044331"
    assert sandbox_session.get(f"{api}accounts({ids[2]})").json()["name"] != "three"
    assert sandbox_session.get(f"{api}accounts({ids[0]})").json()["name"] == "one"

    r = _post(sandbox_session, sandbox, parts, prefer="odata.continue-on-error")
    assert r.headers["Preference-Applied"] == "odata.continue-on-error"
    assert [s for s, _, _ in _responses(r)] == [204, 400, 204]
    assert sandbox_session.get(f"{api}accounts({ids[2]})").json()["name"] == "three"


def test_batch_limits_and_format_errors(sandbox, sandbox_session):
    api = sandbox.api_url
    too_many = [_part("GET", "WhoAmI") for _ in range(1001)]
    r = _post(sandbox_session, sandbox, too_many)
    assert r.status_code == 400
    assert "maximum number of '1000'" in r.json()["error"]["message"]
    exactly = _post(sandbox_session, sandbox, [_part("GET", "WhoAmI") for _ in range(1000)])
    assert exactly.status_code == 200 and len(_responses(exactly)) == 1000
    json_batch = sandbox_session.post(api + "$batch", json={"requests": []})
    assert json_batch.status_code == 400 and "multipart/mixed" in json_batch.json()["error"]["message"]
    get_in_changeset = _post(sandbox_session, sandbox, [[_part("GET", "WhoAmI")]])
    assert get_in_changeset.status_code == 400


def test_lf_line_endings_and_relative_urls_are_accepted(sandbox, sandbox_session):
    boundary, body = _batch([_part("GET", "/api/data/v9.2/WhoAmI")])
    r = sandbox_session.post(
        sandbox.api_url + "$batch",
        data=body.replace(b"\r\n", b"\n"),
        headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'},
    )
    responses = _responses(r)
    assert responses[0][0] == 200 and "UserId" in responses[0][2]
