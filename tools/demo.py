"""The main job, start to finish, on this machine, with the README's commands: a local
verifier on SQLite, an agent that shows what it would collect and enrolls with the exact
manifest hash, one attestation with the verifier's rule results, and the access token."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _program(name: str, module: str) -> list[str]:
    """The installed command (what the README shows), or the module if not installed."""
    script = BIN / name
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


class Demo:
    """Runs commands and shows them as a reader would type them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.programs = {
            "envattest-server": _program("envattest-server", "server"),
            "envattest": _program("envattest", "agent"),
        }

    def shown(self, args: list[str]) -> str:
        """The command line with the demo directory written as $DEMO."""
        return " ".join(shlex.quote(a) for a in args).replace(str(self.root), "$DEMO")

    def run(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``envattest`` or ``envattest-server`` with ``args``; print it and its output."""
        print(f"\n$ {self.shown([name, *args])}", flush=True)
        done = subprocess.run(
            [*self.programs[name], *args], capture_output=True, text=True, check=False
        )
        if done.stderr.strip():
            print(done.stderr.rstrip(), flush=True)
        if done.stdout.strip():
            print(done.stdout.rstrip(), flush=True)
        return done

    def quiet(self, name: str, *args: str) -> str:
        """Run without showing it (for the demo's own look-ups); its stdout."""
        done = subprocess.run(
            [*self.programs[name], *args], capture_output=True, text=True, check=False
        )
        return done.stdout


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the verifier did not start: see the lines above")
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit("the verifier did not answer within 30 s")


def rule_lines(records: list[dict[str, Any]]) -> list[str]:
    """The rule results of the last attestation in ``audit list --json`` output."""
    attested = [r for r in records if r.get("decision") in ("allow", "deny")]
    if not attested:
        return []
    data = attested[-1].get("data") or {}
    lines = [f"rule results (the verifier's audit record {attested[-1]['seq']}):"]
    for result in data.get("results") or []:
        verdict = "pass" if result.get("passed") else "FAIL"
        lines.append(
            f"  {verdict}  {result.get('rule', '?'):<16} {result.get('mode', ''):<8} "
            f"{result.get('reason', '')}".rstrip()
        )
    return lines


def main() -> int:
    """Run the demo in a temporary directory and clean up."""
    with tempfile.TemporaryDirectory(prefix="envattest-demo-") as tmp:
        root = Path(tmp)
        demo = Demo(root)
        data, home, port = root / "verifier", root / "agent", _free_port()
        url = f"http://127.0.0.1:{port}"
        print(f"DEMO={root}   (a temporary directory, removed at the end)")
        print("\n== 1. The verifier: initialise, create an enrollment token, serve")
        demo.run("envattest-server", "init", "--data-dir", str(data), "--issuer", url)
        enroll = demo.run("envattest-server", "enroll-token", "create", "--data-dir", str(data))
        serve = ["serve", "--data-dir", str(data), "--port", str(port)]
        print(f"\n$ {demo.shown(['envattest-server', *serve])} &")
        server = subprocess.Popen(
            [*demo.programs["envattest-server"], *serve],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_up(url, server)
            manifest = httpx.get(f"{url}/v1/manifest").headers["ETag"].strip('"')
            print(f"verifier running at {url}")
            print(f"manifest SHA-256: {manifest}")
            print("\n== 2. The agent: shows every requested field, enrolls with that exact hash")
            key = ["--key", "auto"]
            if not os.path.exists("/dev/tpmrm0"):
                print("(no TPM on this machine: the demo enrolls a software key, and the")
                print(" verifier records it as 'software')")
                key = ["--key", "software"]
            init = demo.run(
                "envattest", "--home", str(home), "init", "--server", url,
                "--enroll-token", enroll.stdout.strip(), "--accept-manifest", manifest, *key,
            )  # fmt: skip
            if init.returncode != 0:
                return init.returncode
            print("\n== 3. One attestation: challenge, collect, sign, submit")
            attest = demo.run("envattest", "--home", str(home), "attest")
            audit = demo.quiet(
                "envattest-server", "audit", "list", "--data-dir", str(data), "--json"
            )
            print("\n" + "\n".join(rule_lines(json.loads(audit or "[]"))))
            if attest.returncode != 0:
                return attest.returncode
            print("\n== 4. The access token (what Claude Code's apiKeyHelper receives)")
            issued = demo.run("envattest", "--home", str(home), "token")
            print("\nNext: docs/install.md connects a coding tool; docs/gateways.md a gateway.")
            return issued.returncode
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    raise SystemExit(main())
