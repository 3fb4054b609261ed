"""Run three public Dataverse clients, unchanged, against the sandbox served over https; print a pass count.

    python bench/sandbox_clients.py [--venv DIR] [--only sdk,dvapi,airbyte]

The clients are built for the real service: Microsoft's ``PowerPlatform-Dataverse-Client``,
``dataverse-api`` and Airbyte's ``source-microsoft-dataverse``. They are pip-installed into a
throwaway virtual environment each (``--venv DIR`` keeps and reuses them), never into the project's, and run
there by a small runner script against a sandbox started with TLS, the same server as
``dvsync sandbox --tls``: the runner trusts the sandbox's certificate through
``REQUESTS_CA_BUNDLE`` and gets the bearer token in place of Azure AD (the only patch: each client's
token source). Every operation is one check; an operation the sandbox refuses on purpose (a known
difference in docs/sandbox.md) fails, so the count says how far each client gets.

Not part of ``make test`` or ``make bench``: it downloads packages and takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from connector.sandbox import Sandbox

PACKAGES = {
    "sdk": ["PowerPlatform-Dataverse-Client"],
    "dvapi": ["dataverse-api"],
    "airbyte": ["airbyte-source-microsoft-dataverse"],
}

RUNNER = Path(__file__).with_name("sandbox_clients_runner.py")


def _ensure_venv(directory: Path, clients: list[str]) -> Path:
    """Create the environment and install the clients; an environment kept with --venv is reused as is."""
    python = directory / "bin" / "python"
    if python.exists():
        return python
    directory.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    for client in clients:
        for package in PACKAGES[client]:
            done = subprocess.run([str(python), "-m", "pip", "install", "-q", package], check=False)
            if done.returncode != 0:
                print(f"{client}: could not install {package}; its checks will fail at import")
    return python


def main() -> int:
    """Install each client in its own environment, start the sandbox with TLS, run the checks, count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="folder of throwaway environments to create or reuse")
    parser.add_argument("--only", default="sdk,dvapi,airbyte", help="comma list of sdk, dvapi, airbyte")
    args = parser.parse_args()
    clients = [c for c in args.only.split(",") if c in PACKAGES]
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dvsync-clients-") as tmp:
        base = args.venv or Path(tmp) / "venvs"
        for client in clients:
            # A fresh sandbox per client, so one client's keys and writes never meet another's.
            with Sandbox(Path(tmp) / f"sandbox-{client}", size="small", seed=0, tls=True) as sandbox:
                # One environment per client: Airbyte's CDK pins pydantic 1, dataverse-api needs 2.
                python = _ensure_venv(base / client, [client])
                env = {
                    **os.environ,
                    "DV_URL": sandbox.url,
                    "DV_TOKEN": sandbox.token,
                    "DV_ONLY": client,
                    "REQUESTS_CA_BUNDLE": str(sandbox.ca_bundle),
                    "SSL_CERT_FILE": str(sandbox.ca_bundle),
                }
                out = subprocess.run(
                    [str(python), str(RUNNER)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=1800,
                )
                # Airbyte's CDK logs JSON messages on stdout too: keep only the runner's check lines.
                lines = (json.loads(line) for line in out.stdout.splitlines() if line.startswith('{"client"'))
                results += [r for r in lines if {"client", "check", "ok"} <= set(r)]
                if out.returncode != 0:
                    print(out.stderr[-2000:])
    for r in results:
        print(f"{'PASS' if r['ok'] else 'FAIL'}  {r['client']:8} {r['check']}: {r['detail']}")
    passed = sum(r["ok"] for r in results)
    print(f"{passed} of {len(results)} client checks passed")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
