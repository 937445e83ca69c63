"""The main job, start to finish, on this machine: a local verifier on SQLite, an agent that
enrolls with the exact manifest hash, attests, and prints the decision and its token."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(a if len(a) < 60 else a[:24] + "..." for a in args), flush=True)
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.stderr.strip():
        print(done.stderr.rstrip(), flush=True)
    return done


def main() -> int:
    """Run the demo in a temporary directory and clean up."""
    with tempfile.TemporaryDirectory(prefix="envattest-demo-") as tmp:
        data, home, port = Path(tmp) / "verifier", Path(tmp) / "agent", _free_port()
        url = f"http://127.0.0.1:{port}"
        server_cli = [sys.executable, "-m", "server"]
        agent_cli = [sys.executable, "-m", "agent", "--home", str(home)]
        _run(*server_cli, "init", "--data-dir", str(data), "--issuer", url)
        token = _run(*server_cli, "enroll-token", "create", "--data-dir", str(data)).stdout.strip()
        server = subprocess.Popen(
            [*server_cli, "serve", "--data-dir", str(data), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    httpx.get(f"{url}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            manifest_hash = httpx.get(f"{url}/v1/manifest").headers["ETag"].strip('"')
            print(f"verifier running at {url}; manifest SHA-256 {manifest_hash}\n")
            init = _run(
                *agent_cli, "init", "--server", url, "--enroll-token", token,
                "--accept-manifest", manifest_hash, "--key", "auto", "--allow-software-fallback",
            )  # fmt: skip
            if init.returncode != 0:
                return init.returncode
            attest = _run(*agent_cli, "attest", "--json")
            print(attest.stdout)
            if attest.returncode != 0:
                return attest.returncode
            decision = json.loads(attest.stdout)
            print(f"decision: {decision['decision']}")
            print(f"access token: {decision['access_token']}")
            return 0
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
