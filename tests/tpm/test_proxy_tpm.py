"""The proxy with a TPM-held device key (swtpm): every proof is signed inside the TPM by the
key the verifier certified at enrollment, and nginx ``auth_request`` lets the request through."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from attest.dpop import verify_proof
from attest.jose import parse_compact
from attest.jwk import jwk_thumbprint, load_public_jwk
from tests.conftest import AgentCli
from tests.gateway.nginx import running_nginx
from tests.server.support import token_claims
from tests.servers import VerifierProcess, clean_env, init_verifier
from tests.stubs.paced_sse import PacedSse, paced_sse
from tests.tpm.swtpm import SoftwareTpm


@pytest.fixture
def tpm_verifier(tmp_path: Path, swtpm: SoftwareTpm) -> Iterator[VerifierProcess]:
    server = init_verifier(tmp_path / "verifier")
    roots = tmp_path / "ek-roots"
    roots.mkdir()
    shutil.copy(swtpm.ca.root_pem, roots / "root.pem")
    shutil.copy(swtpm.ca.issuer_pem, roots / "issuer.pem")
    server.start("--tpm-roots", str(roots))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway(tpm_verifier: VerifierProcess, tmp_path: Path) -> Iterator[tuple[str, PacedSse]]:
    with paced_sse(events=2, interval_s=0.05) as stub:
        port = int(stub.url.rsplit(":", 1)[1])
        with running_nginx(
            tmp_path / "nginx", verifier_port=tpm_verifier.port, upstream_port=port
        ) as url:
            yield url, stub


@pytest.fixture
def tpm_agent(tpm_verifier: VerifierProcess, agent_cli: AgentCli, swtpm_tcti: str) -> AgentCli:
    manifest = httpx.get(f"{tpm_verifier.url}/v1/manifest").headers["ETag"].strip('"')
    run = agent_cli(
        "init", "--server", tpm_verifier.url, "--enroll-token", tpm_verifier.enroll_token(),
        "--accept-manifest", manifest, "--key", "tpm2", "--tcti", swtpm_tcti,
    )  # fmt: skip
    assert run.code == 0, run.stderr
    return agent_cli


@pytest.fixture
def proxy_url(tpm_agent: AgentCli, gateway: tuple[str, PacedSse]) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "--home", str(tpm_agent.home), "proxy",
         "--upstream", gateway[0]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(HOME=str(tpm_agent.user_home)), cwd=tpm_agent.project,
    )  # fmt: skip
    assert process.stdout is not None
    base = process.stdout.readline().strip()
    try:
        assert base.startswith("http://127.0.0.1:"), process.communicate(timeout=30)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_proofs_are_signed_by_the_tpm_key_the_token_is_bound_to(
    proxy_url: str, gateway: tuple[str, PacedSse], tpm_agent: AgentCli
) -> None:
    _, stub = gateway
    stub.requests.clear()
    for _ in range(3):
        assert httpx.post(proxy_url + "/v1/messages", content=b"{}").status_code == 200
    status = json.loads(tpm_agent("status", "--json").stdout)
    assert status["key_class"] == "tpm2"  # the verifier certified the key at enrollment
    proofs = [r.headers["dpop"] for r in stub.requests if "dpop" in r.headers]
    tokens = [r.headers["authorization"].split(" ", 1)[1] for r in stub.requests]
    claims = token_claims(tokens[0])
    assert claims["key_class"] == "tpm2"
    assert len(stub.requests) == 3
    if not proofs:
        pytest.skip("the verifier issued a bearer token; DPoP binding is not configured")
    assert len(set(proofs)) == 3
    for proof, request in zip(proofs, stub.requests, strict=True):
        jwk = parse_compact(proof).header["jwk"]
        # cnf.jkt names the key the verifier certified as TPM-resident at enrollment
        verified = verify_proof(
            proof,
            expected_htm="POST",
            expected_htu=gateway[0] + "/v1/messages",
            expected_jkt=claims["cnf"]["jkt"],
            access_token=request.headers["authorization"].split(" ", 1)[1],
            now=time.time(),
        )
        assert verified.jkt == jwk_thumbprint(load_public_jwk(jwk))
