"""Benchmark the connector's hot paths and print the figures.

1. Reading: records decoded per second through ``DataverseClient.iter_records`` for pages of 5,000
   realistic lead records with FormattedValue / lookup annotations (the shape of select-columns.md).
   HTTP is served from memory by a transport adapter, so the figure is the client's own cost
   (request building, retries wrapper, JSON decoding, paging), not the network's.
2. Memory: peak Python allocation while streaming many pages, against the size of one page
   (iter_records must hold one page at a time).
3. Writing: time to encode and decode ``$batch`` bodies for 100,000 updates (100 batches of 1,000
   PATCH parts; the responses carry a realistic mix of 204s, 404s and 412s).

Run: ``.venv/bin/python bench/bench_connector.py [--pages 20] [--updates 100000]``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import requests
from requests.adapters import BaseAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector import DataverseClient, RetryPolicy
from connector.batch import BatchRequest, decode_batch, encode_batch
from connector.writeback import results_from_parts

ORG = "https://contoso.crm.dynamics.com"
BASE = f"{ORG}/api/data/v9.2/"
FV = "@OData.Community.Display.V1.FormattedValue"
SOURCES = {1: "Advertisement", 2: "Employee Referral", 3: "External Referral", 4: "Partner", 8: "Web"}
INDUSTRIES = {1: "Accounting", 7: "Consulting", 11: "Financial", 25: "Retail", 33: "Service Retail"}
FIRST = ["Anna", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas"]
LAST = ["Müller", "O'Brien", "Smith", "Nakamura", "García", "Kowalski", "Dubois", "Rossi"]
COMPANIES = ["Contoso Ltd", "Fabrikam, Inc.", "Litware", "Adventure Works", "Northwind Traders"]


def lead(rng: random.Random, n: int) -> dict:
    """One lead as Dataverse returns it with ``odata.include-annotations="*"``."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company = rng.choice(COMPANIES)
    source = rng.choice(list(SOURCES))
    industry = rng.choice(list(INDUSTRIES))
    revenue = round(rng.uniform(1e4, 5e7), 4)
    created = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:14:09Z"
    owner = str(uuid.UUID(int=rng.getrandbits(128)))
    email_last = last.lower().replace("'", "")
    return {
        "@odata.etag": f'W/"{81359849 + n}"',
        "firstname": first,
        "lastname": last,
        "fullname": f"{first} {last}",
        "companyname": company,
        "jobtitle": rng.choice(["CEO", "Purchasing Manager", "IT Director", None]),
        "emailaddress1": f"{first.lower()}.{email_last}{n}@example.com",
        "telephone1": f"+49 30 {rng.randint(1000000, 9999999)}",
        "mobilephone": None,
        "websiteurl": f"https://www.{company.split()[0].lower()}.example",
        "address1_city": rng.choice(["Berlin", "Paris", "Seattle", "Osaka"]),
        "address1_postalcode": f"{rng.randint(10000, 99999)}",
        "address1_country": rng.choice(["Germany", "France", "United States", "Japan"]),
        f"leadsourcecode{FV}": SOURCES[source],
        "leadsourcecode": source,
        f"industrycode{FV}": INDUSTRIES[industry],
        "industrycode": industry,
        f"numberofemployees{FV}": f"{n % 5000:,}",
        "numberofemployees": n % 5000,
        f"revenue{FV}": f"${revenue:,.2f}",
        "revenue": revenue,
        f"budgetamount{FV}": "$25,000.00",
        "budgetamount": 25000.0,
        f"purchasetimeframe{FV}": "This Quarter",
        "purchasetimeframe": 1,
        f"leadqualitycode{FV}": "Warm",
        "leadqualitycode": 2,
        f"statecode{FV}": "Open",
        "statecode": 0,
        f"statuscode{FV}": "New",
        "statuscode": 1,
        f"_ownerid_value{FV}": "Sales Team",
        "_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty": "ownerid",
        "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "team",
        "_ownerid_value": owner,
        f"createdon{FV}": "4/7/2024 2:59 PM",
        "createdon": created,
        f"modifiedon{FV}": "4/7/2024 2:59 PM",
        "modifiedon": created,
        "leadid": str(uuid.UUID(int=rng.getrandbits(128))),
    }


def make_pages(count: int, size: int = 5000) -> list[bytes]:
    rng = random.Random(7)
    pages = []
    for index in range(count):
        page = {
            "@odata.context": f"{BASE}$metadata#leads(firstname,lastname)",
            "value": [lead(rng, index * size + n) for n in range(size)],
        }
        if index + 1 < count:
            page["@odata.nextLink"] = (
                f"{BASE}leads?$select=firstname&$skiptoken=%3Ccookie%20pagenumber=%22{index + 2}%22%3E"
            )
        pages.append(json.dumps(page).encode())
    return pages


class MemoryAdapter(BaseAdapter):
    """Serve prepared page bodies in order, like Dataverse would over HTTP."""

    def __init__(self, pages: list[bytes]) -> None:
        super().__init__()
        self.pages = pages
        self.index = 0

    def send(self, request, **kwargs):  # type: ignore[override]
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json; odata.metadata=minimal"
        response.headers["x-ms-dop-hint"] = "8"
        response._content = self.pages[self.index % len(self.pages)]
        self.index += 1
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def client_over(pages: list[bytes]) -> DataverseClient:
    client = DataverseClient(ORG, lambda: "token", retry=RetryPolicy(sleep=lambda s: None))
    adapter = MemoryAdapter(pages)
    client.http.session.mount("https://", adapter)
    return client


def bench_reading(page_count: int) -> None:
    pages = make_pages(page_count)
    size = len(pages[0])
    client = client_over(pages)
    start = time.perf_counter()
    count = sum(1 for _ in client.iter_records("leads", ["firstname"], formatted_values=True))
    elapsed = time.perf_counter() - start
    print(f"reading: {count:,} lead records ({page_count} pages of 5,000, {size / 1e6:.1f} MB JSON per page)")
    print(f"  {count / elapsed:,.0f} records/s decoded ({elapsed:.2f} s)")

    client = client_over(pages)
    tracemalloc.start()
    for _ in client.iter_records("leads", ["firstname"], formatted_values=True):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  peak allocation while streaming {page_count} pages: {peak / 1e6:.1f} MB "
        "(one page of dicts held at a time)"
    )


def response_body(ids: list[str], rng: random.Random) -> tuple[str, bytes]:
    boundary = f"batchresponse_{uuid.uuid4()}"
    parts = []
    for record_id in ids:
        roll = rng.random()
        head = f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        if roll < 0.98:
            parts.append(head + "HTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\r\n")
        elif roll < 0.99:
            error = {"error": {"code": "0x80040217", "message": f"lead With Id = {record_id} Does Not Exist"}}
            parts.append(
                head + "HTTP/1.1 404 Not Found\r\nREQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026\r\n"
                "Content-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n"
                + json.dumps(error)
            )
        else:
            error = {
                "error": {
                    "code": "0x80060882",
                    "message": "The version of the existing record doesn't match.",
                }
            }
            parts.append(
                head + "HTTP/1.1 412 Precondition Failed\r\nREQ_ID: de4c5227-4a28-4ebd-8ced-3392ece1697b\r\n"
                "Content-Type: application/json; odata.metadata=minimal\r\nOData-Version: 4.0\r\n\r\n"
                + json.dumps(error)
            )
    body = "\r\n".join([*parts, f"--{boundary}--", ""])
    return f"multipart/mixed; boundary={boundary}", body.encode()


def bench_batch(total: int) -> None:
    rng = random.Random(11)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(total)]
    values = [
        {"dvs_leadscore": rng.randint(0, 100), "dvs_leadgrade": rng.choice("ABCD")} for _ in range(total)
    ]
    chunks = [range(i, min(i + 1000, total)) for i in range(0, total, 1000)]

    start = time.perf_counter()
    bodies = []
    for chunk in chunks:
        requests_ = [
            BatchRequest(
                "PATCH",
                f"leads({ids[i]})",
                headers={"Content-Type": "application/json", "If-Match": "*"},
                body=values[i],
            )
            for i in chunk
        ]
        bodies.append(encode_batch(requests_, base_url=BASE))
    encode_s = time.perf_counter() - start
    request_mb = sum(len(body) for _, body in bodies) / 1e6

    answers = [response_body([ids[i] for i in chunk], rng) for chunk in chunks]
    start = time.perf_counter()
    failed = 0
    for chunk, (content_type, body) in zip(chunks, answers, strict=True):
        parts = decode_batch(content_type, body)
        results = results_from_parts([ids[i] for i in chunk], parts, entity_set="leads", base_url=BASE)
        failed += sum(not r.ok for r in results)
    decode_s = time.perf_counter() - start
    print(f"$batch: {total:,} updates in {len(chunks)} batches of ≤1,000 ({request_mb:.1f} MB of requests)")
    print(f"  encode {encode_s:.2f} s ({total / encode_s:,.0f} updates/s)")
    print(
        f"  decode + map to results {decode_s:.2f} s "
        f"({total / decode_s:,.0f} results/s, {failed:,} failures found)"
    )
    print(f"  total {encode_s + decode_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="5,000-record pages to stream (default 20)")
    parser.add_argument("--updates", type=int, default=100_000, help="updates to encode and decode")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    bench_reading(args.pages)
    bench_batch(args.updates)


if __name__ == "__main__":
    main()
