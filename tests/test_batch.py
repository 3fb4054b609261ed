"""$batch encoding and decoding against Microsoft's documented request and response bodies."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from connector.batch import BatchRequest, ChangeSet, decode_batch, encode_batch
from connector.errors import ProtocolError

BASE = "https://contoso.crm.dynamics.com/api/data/v9.2/"
DATA = Path(__file__).parent / "data" / "dataverse"
ACCOUNT = "00000000-0000-0000-0000-000000000001"


def documented(name: str, *, crlf: bool) -> bytes:
    text = (DATA / name).read_text()
    return (text.replace("\n", "\r\n") if crlf else text).encode()


def test_encode_matches_the_documented_layout_with_crlf():
    content_type, body = encode_batch(
        [
            ChangeSet(
                [
                    BatchRequest("POST", "tasks", body={"subject": "Task 1 in batch"}),
                    BatchRequest("POST", "tasks", body={"subject": "Task 2 in batch"}),
                ]
            ),
            BatchRequest("GET", f"accounts({ACCOUNT})/Account_Tasks?$select=subject"),
        ],
        base_url=BASE,
        boundary="batch_AAA123",
    )
    assert content_type == "multipart/mixed;boundary=batch_AAA123"
    text = body.decode()
    assert "\n" not in text.replace("\r\n", "")  # every line ends in CRLF
    lines = text.split("\r\n")
    assert lines[0] == "--batch_AAA123"
    assert lines[1].startswith("Content-Type: multipart/mixed;boundary=changeset_")
    changeset = lines[1].split("boundary=")[1]
    assert lines[2:9] == [
        "",
        f"--{changeset}",
        "Content-Type: application/http",
        "Content-Transfer-Encoding:binary",
        "Content-ID: 1",
        "",
        f"POST {BASE}tasks HTTP/1.1",
    ]
    assert lines[9] == "Content-Type: application/json;type=entry"
    assert json.loads(lines[11]) == {"subject": "Task 1 in batch"}
    assert "Content-ID: 2" in lines
    assert f"--{changeset}--" in lines
    get_at = lines.index(f"GET {BASE}accounts({ACCOUNT})/Account_Tasks?$select=subject HTTP/1.1")
    assert lines[get_at - 4 : get_at] == [
        "--batch_AAA123",
        "Content-Type: application/http",
        "Content-Transfer-Encoding:binary",
        "",
    ]
    assert lines[-2:] == ["--batch_AAA123--", ""]


def test_encoded_body_is_valid_mime_for_an_independent_parser():
    content_type, body = encode_batch(
        [
            BatchRequest("PATCH", f"leads({ACCOUNT})", headers={"If-Match": "*"}, body={"new_score": 87}),
            ChangeSet([BatchRequest("DELETE", f"leads({ACCOUNT})")]),
        ],
        base_url=BASE,
    )
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    parts = list(message.iter_parts())
    assert len(parts) == 2
    assert parts[0].get_content_type() == "application/http"
    inner = parts[0].get_payload(decode=True).decode()
    assert inner.startswith(f"PATCH {BASE}leads({ACCOUNT}) HTTP/1.1\r\nIf-Match: *\r\n")
    assert inner.rstrip().endswith('{"new_score": 87}')
    nested = list(parts[1].iter_parts())
    assert len(nested) == 1 and nested[0]["Content-ID"] == "1"


def test_more_than_1000_requests_are_refused():
    requests_ = [BatchRequest("PATCH", f"leads({ACCOUNT})", body={"a": i}) for i in range(1001)]
    with pytest.raises(ValueError, match="at most 1000"):
        encode_batch(requests_, base_url=BASE)
    content_type, _ = encode_batch(requests_[:1000], base_url=BASE)
    assert content_type.startswith("multipart/mixed")


def test_change_set_members_count_towards_the_limit():
    big = ChangeSet([BatchRequest("DELETE", f"leads({ACCOUNT})")] * 600)
    with pytest.raises(ValueError, match="at most 1000"):
        encode_batch([big, big], base_url=BASE)


def test_get_inside_a_change_set_is_refused():
    with pytest.raises(ValueError, match="GET is not allowed"):
        encode_batch([ChangeSet([BatchRequest("GET", "leads")])], base_url=BASE)


def test_empty_batch_and_header_injection_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        encode_batch([], base_url=BASE)
    with pytest.raises(ValueError, match="line break"):
        encode_batch([BatchRequest("PATCH", "leads(x)", headers={"If-Match": "*\r\nX: y"})], base_url=BASE)


def test_content_id_references_are_kept_as_is():
    _, body = encode_batch(
        [
            ChangeSet(
                [
                    BatchRequest("POST", "contacts", body={}, content_id="1"),
                    BatchRequest("PUT", "$1/lastname", body={"value": "B"}),
                ]
            )
        ],
        base_url=BASE,
    )
    assert "PUT $1/lastname HTTP/1.1" in body.decode()


@pytest.mark.parametrize("crlf", [True, False])
def test_decode_documented_change_set_response(crlf):
    parts = decode_batch(
        "multipart/mixed; boundary=batchresponse_f27ef42d-51b0-4685-bac9-f468f844de2f",
        documented("batch_changeset_response.txt", crlf=crlf),
    )
    assert [p.status for p in parts] == [204, 204, 204, 200]
    assert [p.content_id for p in parts] == ["1", "2", "3", None]
    assert [p.changeset for p in parts] == [True, True, True, False]
    assert parts[0].reason == "No Content"
    assert parts[0].header("odata-entityid").endswith("tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)")
    assert [t["subject"] for t in parts[3].json()["value"]] == [
        "Task 1 in batch",
        "Task 2 in batch",
        "Task 3 in batch",
    ]
    assert parts[0].json() is None


@pytest.mark.parametrize("crlf", [True, False])
def test_decode_documented_continue_on_error_response(crlf):
    parts = decode_batch(
        'multipart/mixed; boundary="batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139"',
        documented("batch_continue_on_error_response.txt", crlf=crlf),
    )
    assert [p.status for p in parts] == [400, 204, 204]
    assert not parts[0].ok and parts[1].ok
    assert parts[0].header("REQ_ID") == "de4c5227-4a28-4ebd-8ced-3392ece1697b"
    assert parts[0].json()["error"]["code"] == "0x80044331"


def test_decode_stop_on_error_response():
    parts = decode_batch(
        "multipart/mixed; boundary=batchresponse_156da4b8-cd2c-4862-a911-4aaab97c001a",
        documented("batch_stop_on_error_response.txt", crlf=True),
    )
    assert len(parts) == 1 and parts[0].status == 400


def test_truncated_response_is_a_protocol_error():
    body = documented("batch_continue_on_error_response.txt", crlf=True)
    with pytest.raises(ProtocolError, match="truncated"):
        decode_batch(
            "multipart/mixed; boundary=batchresponse_f44bd09d-573f-4a30-bca0-2e500ee7e139", body[:-60]
        )


def test_non_multipart_response_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="multipart"):
        decode_batch("application/json", b'{"error":{}}')
    with pytest.raises(ProtocolError, match="boundary"):
        decode_batch("multipart/mixed", b"")


def test_part_without_status_line_is_a_protocol_error():
    body = b"--b\r\nContent-Type: application/http\r\n\r\n<html>oops</html>\r\n--b--\r\n"
    with pytest.raises(ProtocolError, match="status line"):
        decode_batch("multipart/mixed;boundary=b", body)
