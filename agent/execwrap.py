"""``envattest exec``: run a command with a fresh access token in an environment variable,
or (``--via-proxy``) with its base URL pointed at the agent's loopback proxy.

For tools that read their credential from the environment at start (Codex's ``env_key``, the
OpenAI and Anthropic SDKs, scripts), where an ``apiKeyHelper``-style hook does not exist. The
command replaces this process on POSIX, so signals, the terminal and the exit code are the
command's own; on Windows it runs as a child and its exit code is passed through. Through the
proxy the command must run as a child, since the proxy lives in this process: Ctrl-C goes to
the command alone, and its exit code is passed through.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn, Protocol

from agent.errors import AgentError

if TYPE_CHECKING:
    from agent.proxy.running import ProxyEndpoint

DEFAULT_ENV_VAR = "ENVATTEST_TOKEN"
EXIT_USAGE, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND = 2, 126, 127
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CommandError(AgentError):
    """The command to run was missing, not found or not executable."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_env_var_name(name: str) -> str:
    """``name`` if it is a portable environment variable name, else AgentError."""
    if not _ENV_NAME.fullmatch(name):
        raise AgentError(
            f"--env-var {name!r} is not a valid environment variable name; use letters, "
            "digits and underscores, e.g. --env-var OPENAI_API_KEY"
        )
    return name


def command_argv(raw: Sequence[str]) -> list[str]:
    """The command after ``--``; CommandError if there is none."""
    argv = list(raw[1:] if raw and raw[0] == "--" else raw)
    if not argv:
        raise CommandError(
            "no command given; usage: envattest exec [--env-var NAME] -- COMMAND [ARGS...]",
            EXIT_USAGE,
        )
    return argv


def environment_with_token(
    environ: Mapping[str, str], *, env_var: str, token: str
) -> dict[str, str]:
    """A copy of ``environ`` with ``env_var`` set to ``token``."""
    return {**environ, check_env_var_name(env_var): token}


def _exec_replacing(argv: list[str], env: dict[str, str]) -> NoReturn:
    os.execvpe(argv[0], argv, env)  # noqa: S606 (running the user's command is the point)


def _run_child(argv: list[str], env: dict[str, str]) -> int:
    return subprocess.call(argv, env=env)


def run_with_token(
    argv: Sequence[str],
    *,
    env_var: str,
    token: str,
    environ: Mapping[str, str],
    replace_process: bool = os.name == "posix",
    run_child: Callable[[list[str], dict[str, str]], int] = _run_child,
) -> int:
    """Run ``argv`` with ``env_var=token``; returns its exit code (on POSIX, never returns)."""
    command = command_argv(argv)
    env = environment_with_token(environ, env_var=env_var, token=token)
    try:
        if replace_process:
            _exec_replacing(command, env)
        return run_child(command, env)
    except FileNotFoundError:
        raise CommandError(
            f"command not found: {command[0]}; check the name and your PATH", EXIT_NOT_FOUND
        ) from None
    except PermissionError:
        raise CommandError(
            f"cannot execute {command[0]}: permission denied", EXIT_NOT_EXECUTABLE
        ) from None


class StartableProxy(Protocol):
    """What ``run_via_proxy`` needs of a proxy: start (binding, first token) and stop."""

    def start(self) -> ProxyEndpoint:
        """Serve; the endpoint tells the tool where."""
        ...

    def stop(self) -> None:
        """Stop serving."""
        ...


def _signal_code(returncode: int) -> int:
    """A child killed by signal N exits like a shell reports it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_child_in_foreground(argv: list[str], env: dict[str, str]) -> int:
    """Run ``argv`` and wait; Ctrl-C belongs to the tool (it shares the terminal's process
    group), SIGTERM and SIGHUP are passed on to it. Returns its exit code."""
    try:
        child = subprocess.Popen(argv, env=env)
    except FileNotFoundError:
        raise CommandError(
            f"command not found: {argv[0]}; check the name and your PATH", EXIT_NOT_FOUND
        ) from None
    except PermissionError:
        raise CommandError(
            f"cannot execute {argv[0]}: permission denied", EXIT_NOT_EXECUTABLE
        ) from None
    forwarded = [s for s in ("SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {name: signal.getsignal(getattr(signal, name)) for name in forwarded}
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in forwarded:
        signal.signal(getattr(signal, name), lambda signum, _frame: child.send_signal(signum))
    try:
        return _signal_code(child.wait())
    finally:
        signal.signal(signal.SIGINT, previous_int)
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def run_via_proxy(
    argv: Sequence[str],
    *,
    proxy: StartableProxy,
    environment: Callable[[ProxyEndpoint], dict[str, str]],
    run_child: Callable[[list[str], dict[str, str]], int] = run_child_in_foreground,
) -> int:
    """Start ``proxy``, run the command with ``environment(endpoint)``, stop the proxy;
    returns the command's exit code."""
    command = command_argv(argv)
    endpoint = proxy.start()
    try:
        return run_child(command, environment(endpoint))
    finally:
        proxy.stop()
