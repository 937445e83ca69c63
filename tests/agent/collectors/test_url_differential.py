"""Differential test: the agent's WHATWG reading of hostile URLs against the real Node.js.

Every string in ``tests/vectors/urls/hostile-urls.json`` is read by ``new URL()`` in node
(``whatwg_oracle.js``) and by the agent, once as a base URL (no default scheme) and once as
a proxy value (``http://`` put in front of a value without ``://``, as Node's proxy-from-env
and httpx do). Wherever node yields a host, the agent must report that same host and port,
or refuse the value (an ``invalid-url`` entry, on which the rules fail closed) for a reason
listed in ``_refusal_reason``. Wherever node throws, the agent must not invent a host.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from agent.collectors.urlreaders import Destination, Reader, canonical_host
from agent.collectors.urls import _looks_like_host_port, destinations
from tests._support import need_tool

CORPUS = Path(__file__).resolve().parents[2] / "vectors" / "urls" / "hostile-urls.json"
ORACLE = Path(__file__).with_name("whatwg_oracle.js")
MIN_CORPUS = 200


def _node_results(inputs: list[str], default_scheme: str | None) -> list[dict[str, object] | None]:
    node = need_tool("node", "install Node.js (apt-get install nodejs)")
    request = json.dumps({"inputs": inputs, "default_scheme": default_scheme})
    done = subprocess.run(
        [node, str(ORACLE)], input=request, capture_output=True, text=True, timeout=60, check=True
    )
    results: list[dict[str, object] | None] = json.loads(done.stdout)
    return results


def _same_host(agent: str, node: str) -> bool:
    node = node.removeprefix("[").removesuffix("]").removesuffix(".")
    try:
        return ipaddress.ip_address(agent) == ipaddress.ip_address(node)
    except ValueError:
        return agent == node


def _refusal_reason(raw: str, node: dict[str, object], default_scheme: str | None) -> str | None:
    """Why the agent may refuse what node accepts; None when it may not."""
    if default_scheme and "://" not in raw and not _looks_like_host_port(raw.strip()):
        return "a bare word is never guessed to be a host (it may be a pasted secret)"
    if node["port"] == 0:
        return "port 0: no connection is possible"
    host = str(node["host"])
    if not host or canonical_host(host) is None:
        return "a host no resolver can look up (empty, a label over 63, odd characters)"
    if not raw.isascii():
        return "newer UTS 46 processing (the agent's ada) refuses a label this node's accepts"
    return None


def _whatwg(raw: str, default_scheme: str | None) -> Destination | None:
    found = destinations(raw, (Reader.WHATWG,), default_scheme=default_scheme)
    assert len(found) <= 1
    return found[0] if found else None


def test_corpus_is_large_enough() -> None:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    assert len(set(corpus)) == len(corpus) >= MIN_CORPUS


@pytest.mark.parametrize("default_scheme", [None, "http"], ids=["base-url", "proxy"])
def test_agent_reads_hosts_as_node_does(default_scheme: str | None) -> None:
    corpus: list[str] = json.loads(CORPUS.read_text(encoding="utf-8"))
    oracle = _node_results(corpus, default_scheme)
    disagreements: list[str] = []
    refused = agreed = 0
    for raw, node in zip(corpus, oracle, strict=True):
        agent = _whatwg(raw, default_scheme)
        if node is None:
            if agent is not None:
                disagreements.append(f"{raw!r}: node throws, agent reports {agent}")
            continue
        if agent is None:
            if _refusal_reason(raw, node, default_scheme) is None:
                disagreements.append(f"{raw!r}: node connects to {node}, agent refuses")
            refused += 1
            continue
        if not _same_host(agent.host, str(node["host"])) or agent.port != node["port"]:
            disagreements.append(f"{raw!r}: node {node}, agent {agent}")
        if agent.scheme != node["scheme"] or agent.has_credentials != node["credentials"]:
            disagreements.append(f"{raw!r}: node {node}, agent {agent}")
        agreed += 1
    assert not disagreements, "\n".join(disagreements)
    assert agreed > len(corpus) // 2, "the corpus should mostly be strings a client accepts"


def test_python_reading_never_crashes_and_never_leaks() -> None:
    corpus: list[str] = json.loads(CORPUS.read_text(encoding="utf-8"))
    for raw in corpus:
        for default_scheme in (None, "http"):
            for dest in destinations(raw, (Reader.PYTHON,), default_scheme=default_scheme):
                assert canonical_host(dest.host) == dest.host
                assert dest.port is None or 0 < dest.port <= 65535
                assert "@" not in dest.host
                assert "/" not in dest.host
