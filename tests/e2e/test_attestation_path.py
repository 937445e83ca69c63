"""The whole path with the real agent CLI against a real verifier process."""

from __future__ import annotations

import json

import httpx
from jwcrypto import jwk, jwt

from tests.conftest import AgentCli
from tests.servers import VerifierProcess


def _manifest_hash(verifier: VerifierProcess) -> str:
    return httpx.get(f"{verifier.url}/v1/manifest").headers["ETag"].strip('"')


def test_init_show_attest_token_and_token_verifies_with_jwks(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    manifest_hash = _manifest_hash(verifier)
    init = agent_cli(
        "init",
        "--server", verifier.url,
        "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", manifest_hash,
        "--key", "software",
    )  # fmt: skip
    assert init.code == 0, init.stderr
    assert "timezone.iana" in init.stderr  # the prompt listed the fields
    assert manifest_hash in init.stderr

    show = agent_cli("show", "--json")
    assert show.code == 0, show.stderr
    shown = json.loads(show.stdout)
    assert shown["consent"]["manifest_sha256"] == manifest_hash
    assert set(shown["signals"]) <= set(shown["consent"]["fields"])

    attest = agent_cli("attest", "--json")
    assert attest.code == 0, attest.stderr + attest.stdout
    decision = json.loads(attest.stdout)
    assert decision["decision"] == "allow"

    token = agent_cli("token")
    assert token.code == 0, token.stderr
    access_token = token.stdout.strip()
    assert access_token == decision["access_token"]  # served from cache

    # A second, independent JOSE library verifies the token against the published JWKS.
    keyset = jwk.JWKSet.from_json(httpx.get(f"{verifier.url}/.well-known/jwks.json").text)
    verified = jwt.JWT(jwt=access_token, key=keyset, algs=["ES256"])
    claims = json.loads(verified.claims)
    status = json.loads(agent_cli("status", "--json").stdout)
    assert claims["sub"] == status["device_id"]
    assert claims["key_class"] == "software"
    assert claims["iss"] == "https://verifier.test"
    assert {"aud", "iat", "exp", "jti", "policy_version"} <= set(claims)
    assert claims["cnf"]["jkt"]


def test_init_without_consent_enrolls_nothing(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--key", "software",
    )  # fmt: skip
    assert run.code == 4
    assert "--accept-manifest" in run.stderr
    assert not agent_cli.home.joinpath("agent.json").exists()


def test_wrong_manifest_hash_is_refused(verifier: VerifierProcess, agent_cli: AgentCli) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--accept-manifest", "0" * 64, "--key", "software",
    )  # fmt: skip
    assert run.code == 4
    assert "does not match" in run.stderr


def test_bad_enrollment_token_says_what_to_do(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", "et_not-a-token",
        "--accept-manifest", _manifest_hash(verifier), "--key", "software",
    )  # fmt: skip
    assert run.code == 1
    last_line = run.stderr.strip().splitlines()[-1]
    assert "ask your administrator" in last_line  # one clear line after the prompt
    assert "Traceback" not in run.stderr


def test_unreachable_server_is_one_clear_line(agent_cli: AgentCli) -> None:
    run = agent_cli(
        "init", "--server", "http://127.0.0.1:9", "--enroll-token", "x",
        "--accept-manifest", "0" * 64, "--key", "software",
    )  # fmt: skip
    assert run.code == 1
    assert "cannot reach the verifier" in run.stderr
    assert "Traceback" not in run.stderr


def test_commands_before_init_say_to_run_init(agent_cli: AgentCli) -> None:
    for command in ("show", "attest", "token", "status"):
        run = agent_cli(command)
        assert run.code == 1, command
        assert "envattest init" in run.stderr, command


def test_bad_enrollment_token_is_caught_before_the_consent_prompt(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", "et_not-a-token", "--key", "software",
    )  # fmt: skip
    assert run.code == 1
    assert "timezone.iana" not in run.stderr  # no prompt was shown
    assert run.stderr.strip().count("\n") == 0, run.stderr  # one line
    assert "ask your administrator" in run.stderr
    assert not agent_cli.home.joinpath("agent.json").exists()


def test_unusable_key_provider_is_caught_before_the_consent_prompt(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    run = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", verifier.enroll_token(),
        "--key", "tpm2", "--tcti", "device:/nonexistent/tpm0",
    )  # fmt: skip
    assert run.code == 1
    assert "timezone.iana" not in run.stderr
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert "--key tpm2" in run.stderr
    assert "--key software" in run.stderr


def test_the_token_check_before_consent_spends_nothing(
    verifier: VerifierProcess, agent_cli: AgentCli
) -> None:
    token = verifier.enroll_token(uses=1)
    declined = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", token, "--key", "software"
    )
    assert declined.code == 4  # token and key checked, then consent was not given
    accepted = agent_cli(
        "init", "--server", verifier.url, "--enroll-token", token,
        "--accept-manifest", _manifest_hash(verifier), "--key", "software",
    )  # fmt: skip
    assert accepted.code == 0, accepted.stderr
