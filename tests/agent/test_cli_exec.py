"""``envattest exec``: a command runs with the token in the named variable, exit code intact."""

from __future__ import annotations

import json
import time

import pytest

from agent.errors import AgentError
from agent.execwrap import CommandError, environment_with_token, run_with_token
from tests.conftest import AgentCli


def _cache_token(agent_cli: AgentCli, token: str) -> None:
    agent_cli.home.mkdir(parents=True, exist_ok=True)
    doc = {"access_token": token, "expires_at": int(time.time()) + 600}
    agent_cli.home.joinpath("token.json").write_text(json.dumps(doc))


def test_token_lands_in_the_named_variable_and_exit_code_passes_through(
    agent_cli: AgentCli,
) -> None:
    _cache_token(agent_cli, "tok.en.value")
    run = agent_cli(
        "exec", "--env-var", "OPENAI_API_KEY", "--",
        "sh", "-c", 'printf "%s" "$OPENAI_API_KEY"; exit 7',
    )  # fmt: skip
    assert run.code == 7
    assert run.stdout == "tok.en.value"
    assert run.stderr == ""


def test_default_variable_is_envattest_token_and_args_are_kept(agent_cli: AgentCli) -> None:
    _cache_token(agent_cli, "tok.en.value")
    run = agent_cli("exec", "--", "sh", "-c", 'echo "$ENVATTEST_TOKEN $0 $1"', "a b", "--json")
    assert run.code == 0, run.stderr
    assert run.stdout == "tok.en.value a b --json\n"


def test_command_not_found_is_127_with_one_line(agent_cli: AgentCli) -> None:
    _cache_token(agent_cli, "tok.en.value")
    run = agent_cli("exec", "--", "envattest-no-such-command")
    assert run.code == 127
    assert run.stderr == (
        "envattest: command not found: envattest-no-such-command; check the name and your PATH\n"
    )


def test_missing_command_and_bad_variable_name_fail_before_attesting(agent_cli: AgentCli) -> None:
    run = agent_cli("exec", "--")
    assert run.code == 2
    assert "usage: envattest exec" in run.stderr
    run = agent_cli("exec", "--env-var", "OPENAI-API-KEY", "--", "true")
    assert run.code == 1
    assert "not a valid environment variable name" in run.stderr
    assert not agent_cli.home.exists()  # nothing was attempted


def test_without_enrollment_the_command_does_not_run(agent_cli: AgentCli) -> None:
    run = agent_cli("exec", "--", "sh", "-c", "echo ran")
    assert run.code == 1
    assert "ran" not in run.stdout
    assert "envattest init" in run.stderr


def test_run_with_token_as_a_child_process_passes_env_and_code() -> None:
    seen: dict[str, object] = {}

    def child(argv: list[str], env: dict[str, str]) -> int:
        seen.update(argv=argv, token=env["MY_KEY"], path=env["PATH"])
        return 42

    code = run_with_token(
        ["--", "tool", "--flag"], env_var="MY_KEY", token="t", environ={"PATH": "/bin"},
        replace_process=False, run_child=child,
    )  # fmt: skip
    assert code == 42
    assert seen == {"argv": ["tool", "--flag"], "token": "t", "path": "/bin"}


def test_environment_copy_leaves_the_original_alone() -> None:
    original = {"A": "1"}
    assert environment_with_token(original, env_var="B", token="t") == {"A": "1", "B": "t"}
    assert original == {"A": "1"}
    with pytest.raises(AgentError, match="not a valid environment variable name"):
        environment_with_token(original, env_var="1B", token="t")


def test_missing_child_executable_maps_to_127() -> None:
    def child(argv: list[str], env: dict[str, str]) -> int:
        raise FileNotFoundError(argv[0])

    with pytest.raises(CommandError, match="command not found: nope") as caught:
        run_with_token(
            ["nope"], env_var="K", token="t", environ={}, replace_process=False, run_child=child
        )
    assert caught.value.exit_code == 127
