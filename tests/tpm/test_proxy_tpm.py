"""The proxy with a TPM-held device key (swtpm): every proof is signed inside the TPM by the
key the verifier certified at enrollment, nginx ``auth_request`` accepts them, and the same
token with a software key's proof is refused."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from attest.dpop import verify_proof
from attest.keys.software import SoftwareKey
from tests.conftest import AgentCli
from tests.e2e.proxy_support import Gateway, dpop_gateway, enroll, proxy_process
from tests.server.dpop_support import proof, refusals, refused_at
from tests.server.support import token_claims
from tests.stubs.paced_sse import PacedSse, paced_sse
from tests.tpm.swtpm import SoftwareTpm


@pytest.fixture
def stack(tmp_path: Path, swtpm: SoftwareTpm) -> Iterator[tuple[Gateway, PacedSse]]:
    roots = tmp_path / "ek-roots"
    roots.mkdir()
    shutil.copy(swtpm.ca.root_pem, roots / "root.pem")
    shutil.copy(swtpm.ca.issuer_pem, roots / "issuer.pem")
    with paced_sse(events=2, interval_s=0.05) as stub:
        port = int(stub.url.rsplit(":", 1)[1])
        with dpop_gateway(
            tmp_path, upstream_port=port, verifier_args=("--tpm-roots", str(roots))
        ) as gateway:
            yield gateway, stub


def test_tpm_signed_proofs_pass_the_gateway_and_a_software_proof_does_not(
    stack: tuple[Gateway, PacedSse], agent_cli: AgentCli, swtpm_tcti: str, tmp_path: Path
) -> None:
    gateway, stub = stack
    device_id = enroll(agent_cli, gateway.verifier, "--key", "tpm2", "--tcti", swtpm_tcti)
    assert json.loads(agent_cli("status", "--json").stdout)["key_class"] == "tpm2"
    url = gateway.url + "/v1/messages"
    with proxy_process(agent_cli, gateway.url) as (base, _):
        stub.requests.clear()
        for _ in range(3):
            assert httpx.post(base + "/v1/messages", content=b"{}").status_code == 200
    assert [r.headers["x-envattest-device"] for r in stub.requests] == [device_id] * 3
    for request in stub.requests:
        scheme, token = request.headers["authorization"].split(" ", 1)
        claims = token_claims(token)
        assert (scheme, claims["key_class"]) == ("DPoP", "tpm2")
        # cnf.jkt is the key the verifier certified as TPM-resident at enrollment
        verify_proof(
            request.headers["dpop"], expected_htm="POST", expected_htu=url,
            expected_jkt=claims["cnf"]["jkt"], access_token=token, now=time.time(),
        )  # fmt: skip
    assert len({r.headers["dpop"] for r in stub.requests}) == 3
    # the same token with a proof from a software key is refused before the upstream
    software = SoftwareKey.create(tmp_path / "software.pem")
    stub.requests.clear()
    before = refusals(gateway.verifier)
    answer = httpx.post(
        url,
        content=b"{}",
        headers={"Authorization": f"DPoP {token}", "DPoP": proof(software, token, "POST", url)},
    )
    assert answer.status_code == 401
    assert stub.requests == []
    assert refused_at(gateway.verifier, before) == ["authz:dpop.jkt"]
