"""The benchmark's load client (bench/_driver.py): the evidence it splices together is what
the verifier accepts, and its hand-parsed keep-alive responses are read whole."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from attest.evidence import parse_evidence, verify_evidence_signature
from attest.jwk import load_public_jwk
from attest.keys.software import SoftwareKey
from attest.manifest import parse_manifest
from server.datadir import default_manifest
from tests.devices import TestDevice

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench._driver import AgentSpec, _Evidence, _nonce, _Wire


def test_spliced_evidence_parses_and_verifies(tmp_path: Path) -> None:
    key = SoftwareKey.create(tmp_path / "k.pem")
    manifest = parse_manifest(default_manifest("t"))
    device = TestDevice("http://verifier.test", "dev_bench", key, manifest)
    claims = device.claims("template").to_json()
    made = _Evidence(AgentSpec("dev_bench", str(tmp_path / "k.pem"), claims), "127.0.0.1:1")
    request = made.attest_request("n" * 43, 1_800_000_123)
    head, _, body = request.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    evidence = parse_evidence(body)
    assert (evidence.claims.nonce, evidence.claims.iat) == ("n" * 43, 1_800_000_123)
    verify_evidence_signature(evidence, expected_key=load_public_jwk(key.public_jwk()))
    assert _nonce(b'{"nonce":"abc_-1","expires_in":120}') == "abc_-1"


def test_responses_are_read_across_reads_and_back_to_back() -> None:
    async def scenario() -> list[tuple[int, bytes]]:
        got: list[bytes] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            got.append(b"1")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-le")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"ngth: 5\r\n\r\nhel")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"lo")
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 401 No\r\nContent-Length: 2\r\nx: y\r\n\r\nno")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # forward auth: 204 without Content-Length
            writer.write(b"HTTP/1.1 204 No Content\r\nx-envattest-device: d\r\n\r\n")
            await writer.drain()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        wire = await _Wire.open("127.0.0.1", port)
        answers = [await wire.request(b"GET / HTTP/1.1\r\n\r\n") for _ in range(3)]
        wire.close()
        server.close()
        return answers

    assert asyncio.run(scenario()) == [(200, b"hello"), (401, b"no"), (204, b"")]
