"""A real Chromium signs in to a real console over a seeded fleet, opens every page, checks
the figures against the database, and finds no console error, no script run from agent data,
and no request to any host but the verifier. Screenshots are kept (ENVATTEST_SCREENSHOTS=dir
copies them there: docs/console/ holds the ones in the README)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests._support import free_port, missing_component, need_tool
from tests.console.fleet import FleetSpec
from tests.console.support import HOSTILE, PASSWORD, ConsoleProcess, make_fleet_dir, sign_checkpoint
from tests.devices import TestDevice, default_signals
from tests.servers import VerifierProcess

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN_TTL_S = 900  # the default policy's


@dataclass
class Deployment:
    """A verifier and a console on one data directory holding a seeded fleet."""

    verifier: VerifierProcess
    console: ConsoleProcess
    db: Path
    hostile_device: str


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("browser")
    down = f"http://127.0.0.1:{free_port()}/down"
    now = int(time.time())
    data_dir, _ = make_fleet_dir(
        root,
        FleetSpec(
            devices=400, attestations_per_device=8, start_at=now - 8 * 86_400, span_s=8 * 86_400
        ),
        server_toml=(
            "[alerts]\nmax_attempts = 2\nretry_base_s = 1\n\n[[alerts.webhook]]\n"
            f'name = "secops"\nurl = "{down}"\nformat = "slack"\n'
        ),
    )
    sign_checkpoint(data_dir)
    verifier = VerifierProcess(data_dir=data_dir, port=free_port()).start()
    console = ConsoleProcess(data_dir).start()
    try:
        device = TestDevice.enroll(verifier.url, verifier.enroll_token(), root / "key.json")
        signals = default_signals(device.manifest)
        assert "proxy.tunnels" in signals
        signals["proxy.tunnels"] = [{"name": HOSTILE, "kind": "wireguard"}]
        answer = device.attest(device.evidence(signals=signals))
        assert answer.status_code in (200, 403), answer.text  # accepted: decided, audited
        yield Deployment(verifier, console, data_dir / "envattest.db", device.device_id)
    finally:
        console.stop()
        verifier.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium = need_tool("chromium", "apt-get install chromium (the tests drive Debian's Chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_component("playwright not installed: pip install -e '.[dev]'")
        raise
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def _sql(db: Path, query: str, *args: object) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(query, args).fetchone()[0])


def _check_screenshot(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 20_000, f"{path.name} is nearly empty ({len(data)} bytes)"
    assert len(set(data[1000:20_000])) > 200, f"{path.name} looks uniform"
    target = os.environ.get("ENVATTEST_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)


def test_every_page_in_a_real_browser(
    deployment: Deployment, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, ConsoleMessage, Request

    assert isinstance(browser, Browser)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    hosts: set[str] = set()
    dialogs: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    base = deployment.console.url
    _ = (ConsoleMessage, Request)

    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login")  # no session: the sign-in page, no data
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")

    # fleet figures, against the database itself (not the console's tables)
    db, now = deployment.db, int(time.time())
    active = _sql(db, "SELECT count(*) FROM devices WHERE revoked_at IS NULL AND erased_at IS NULL")
    assert page.inner_text("#fig-active") == str(active)
    stale = _sql(
        db,
        "SELECT count(*) FROM devices d WHERE revoked_at IS NULL AND erased_at IS NULL"
        " AND coalesce((SELECT max(at) FROM audit_log a WHERE a.device_id = d.device_id"
        " AND a.event = 'attest'), 0) < ?",
        now - TOKEN_TTL_S,
    )
    assert abs(int(page.inner_text("#fig-stale")) - stale) <= 1  # a device may age out meanwhile
    software = _sql(
        db,
        "SELECT count(*) FROM devices WHERE key_class = 'software'"
        " AND revoked_at IS NULL AND erased_at IS NULL",
    )
    assert page.inner_text('a[data-class="software"][data-state="active"]') == str(software)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=tmp_path / "fleet.png", full_page=True)

    page.goto(f"{base}/devices")
    assert page.locator("#devices tbody tr").count() == 50
    page.screenshot(path=tmp_path / "devices.png")

    relay_device = "dev-0000009"  # its base URL turns custom after the first round
    page.goto(f"{base}/devices/{relay_device}")
    attests = _sql(
        db, "SELECT count(*) FROM audit_log WHERE device_id = ? AND event = 'attest'", relay_device
    )
    assert page.inner_text("#attestations").startswith(f"{attests} ")
    assert "changed from official api.anthropic.com to custom" in page.inner_text("#timeline")
    page.screenshot(path=tmp_path / "device.png", full_page=True)

    page.goto(f"{base}/devices/{deployment.hostile_device}")
    page.click("#timeline details summary")
    cell = page.locator(".signals tr", has_text="proxy.tunnels").locator("td")
    assert HOSTILE in cell.inner_text()  # shown as text, not run
    assert page.title().startswith("Device ")  # the script did not set it
    assert page.locator("#timeline img").count() == 0

    page.goto(f"{base}/fields")
    zones = _sql(
        db,
        "SELECT count(DISTINCT json_extract(data, '$.signals.\"timezone.iana\"')) FROM audit_log"
        " WHERE seq IN (SELECT max(seq) FROM audit_log WHERE event = 'attest' GROUP BY device_id)",
    )
    assert page.locator("#field-timezone\\.iana table.values tbody tr").count() == zones
    page.wait_for_load_state("networkidle")
    page.screenshot(
        path=tmp_path / "fields.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": 2400},
    )

    page.goto(f"{base}/audit")
    page.click("#verify")
    page.wait_for_url(f"{base}/audit")
    assert "verified" in page.inner_text("#verify-result")
    records = _sql(db, "SELECT count(*) FROM audit_log WHERE event = 'console.audit-verify'")
    assert records == 1
    page.screenshot(path=tmp_path / "audit.png")

    deadline = time.monotonic() + 30  # the receiver is down: retried, then failed
    while time.monotonic() < deadline:
        page.goto(f"{base}/alerts")
        if page.inner_text("#state-failed") != "0" and page.inner_text("#state-pending") == "0":
            break
        time.sleep(1)
    failed = _sql(db, "SELECT count(*) FROM alert_deliveries WHERE state = 'failed'")
    assert failed > 0
    assert page.inner_text("#state-failed") == str(failed)
    assert "ConnectError" in page.inner_text("#alerts")
    page.screenshot(path=tmp_path / "alerts.png")

    page.goto(f"{deployment.verifier.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "envattest verifier" in page.inner_text(".swagger-ui .info .title")
    page.screenshot(path=tmp_path / "docs.png", full_page=False)

    assert errors == []
    assert dialogs == []
    allowed = {urlsplit(base).netloc, urlsplit(deployment.verifier.url).netloc}
    assert hosts <= allowed, f"requests to other hosts: {hosts - allowed}"
    for shot in sorted(tmp_path.glob("*.png")):
        _check_screenshot(shot)
    page.close()
