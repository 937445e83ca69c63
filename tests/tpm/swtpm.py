"""Software TPMs for tests: manufactured with an EK certificate from a local CA, served on loopback.

``manufacture_tpm`` runs ``swtpm_setup`` + ``swtpm_localca`` with config files that point into
a temporary directory (no system paths), creating an RSA-2048 EK (cert in NV 0x01c00002) and an
ECC P-384 EK (cert in NV 0x01c00016). ``SoftwareTpm.start`` serves it with ``swtpm socket`` on
free loopback ports; ``stop`` shuts it down cleanly (TPM2_Shutdown, then the control channel) so
the dictionary-attack counter never rises. Server end-to-end tests reuse this module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests._support import free_port, missing_component, need_tool

INSTALL_HOW = (
    "install with: apt-get install swtpm swtpm-tools tpm2-tools libtss2-dev; "
    "pip install 'tpm2-pytss>=3'"
)
_TOOLS = ("swtpm", "swtpm_setup", "swtpm_localca", "swtpm_ioctl", "tpm2_shutdown")


def require_swtpm() -> dict[str, str]:
    """Paths of the swtpm/tpm2-tools executables, or skip (locally) / fail (CI)."""
    return {name: need_tool(name, INSTALL_HOW) for name in _TOOLS}


def require_pytss() -> None:
    """tpm2-pytss must import, or skip (locally) / fail (CI)."""
    os.environ.setdefault("TSS2_LOG", "all+none")
    try:
        import tpm2_pytss  # noqa: F401
    except ImportError:
        missing_component(f"tpm2_pytss is not importable; {INSTALL_HOW}")


@dataclass
class LocalCa:
    """A swtpm_localca directory: root CA + issuing CA created on first use."""

    directory: Path

    @property
    def root_pem(self) -> Path:
        """The root CA certificate (trust anchor)."""
        return self.directory / "swtpm-localca-rootca-cert.pem"

    @property
    def issuer_pem(self) -> Path:
        """The intermediate CA certificate that signs EK certificates."""
        return self.directory / "issuercert.pem"

    @property
    def issuer_key_pem(self) -> Path:
        """The intermediate CA's private key (to issue extra EK certificates in tests)."""
        return self.directory / "signkey.pem"


@dataclass
class SoftwareTpm:
    """A manufactured swtpm state directory and, once started, its server process."""

    state_dir: Path
    ca: LocalCa
    tools: dict[str, str]
    port: int = 0
    ctrl_port: int = 0
    _process_pid: int | None = field(default=None, repr=False)

    @property
    def tcti(self) -> str:
        """The TCTI string for tpm2-pytss / tpm2-tools."""
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def start(self) -> None:
        """Serve the TPM on fresh loopback ports; returns when it accepts connections."""
        self.port, self.ctrl_port = _free_port_pair()
        pid_file = self.state_dir.parent / f"{self.state_dir.name}.pid"
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        subprocess.run(
            [
                self.tools["swtpm"],
                "socket",
                "--tpm2",
                "--tpmstate",
                f"dir={self.state_dir}",
                "--server",
                f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                "--ctrl",
                f"type=tcp,port={self.ctrl_port},bindaddr=127.0.0.1",
                "--flags",
                "not-need-init,startup-clear",
                "--daemon",
                "--pid",
                f"file={pid_file}",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                self._process_pid = int(pid_file.read_text().strip())
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            time.sleep(0.01)
        raise RuntimeError(f"swtpm did not start listening on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """TPM2_Shutdown(CLEAR), then ask swtpm to exit; kill only our own pid as a last resort."""
        if self._process_pid is None:
            return
        pid, self._process_pid = self._process_pid, None
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [self.tools["tpm2_shutdown"], "-c", "-T", self.tcti],
                capture_output=True,
                timeout=10,
                check=False,
            )
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                [self.tools["swtpm_ioctl"], "--tcp", f"127.0.0.1:{self.ctrl_port}", "-s"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.01)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)

    def restart(self) -> None:
        """Stop and start again: transient objects and saved contexts are gone afterwards."""
        self.stop()
        self.start()


def _free_port_pair() -> tuple[int, int]:
    """Ports P and P+1, both free: the swtpm TCTI always uses P+1 as the control channel."""
    for _ in range(50):
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port, port + 1
    raise RuntimeError("no two consecutive free loopback ports for swtpm")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A daemon we started is our child's child: it may linger as a zombie of init only.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][:1] != "Z"
    return True


def _write_configs(base: Path, ca: LocalCa) -> Path:
    ca.directory.mkdir(parents=True, exist_ok=True)
    localca_conf = base / "swtpm-localca.conf"
    localca_conf.write_text(
        f"statedir = {ca.directory}\n"
        f"signingkey = {ca.issuer_key_pem}\n"
        f"issuercert = {ca.issuer_pem}\n"
        f"certserial = {ca.directory / 'certserial'}\n"
    )
    localca_options = base / "swtpm-localca.options"
    localca_options.write_text(
        "--platform-manufacturer envattest\n--platform-version 2.1\n--platform-model swtpm\n"
    )
    setup_conf = base / "swtpm_setup.conf"
    setup_conf.write_text(
        f"create_certs_tool = {need_tool('swtpm_localca', INSTALL_HOW)}\n"
        f"create_certs_tool_config = {localca_conf}\n"
        f"create_certs_tool_options = {localca_options}\n"
        "active_pcr_banks = sha256\n"
    )
    return setup_conf


def manufacture_tpm(base: Path, *, ca: LocalCa | None = None) -> SoftwareTpm:
    """A new TPM under ``base`` with EK certificates from ``ca`` (default: a new CA in ``base``)."""
    tools = require_swtpm()
    base.mkdir(parents=True, exist_ok=True)
    ca = ca or LocalCa(base / "ca")
    state_dir = base / "state"
    state_dir.mkdir(exist_ok=True)
    setup_conf = _write_configs(base, ca)
    result = subprocess.run(
        [
            tools["swtpm_setup"],
            "--tpm2",
            "--tpmstate",
            str(state_dir),
            "--createek",
            "--create-ek-cert",
            "--create-platform-cert",
            "--config",
            str(setup_conf),
            "--overwrite",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"swtpm_setup failed:\n{result.stdout}\n{result.stderr}")
    return SoftwareTpm(state_dir=state_dir, ca=ca, tools=tools)
