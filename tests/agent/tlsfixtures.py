"""A private CA, a server certificate for 127.0.0.1, and a verifier serving HTTPS with it."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.servers import REPO, VerifierProcess, clean_env, init_verifier


@dataclass(frozen=True)
class PrivateCa:
    """PEM files of a CA and of a server certificate it issued for 127.0.0.1 / localhost."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_private_ca(directory: Path) -> PrivateCa:
    """Write a fresh CA and a server certificate into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("envattest test CA"))
        .issuer_name(_name("envattest test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = PrivateCa(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class HttpsVerifierProcess(VerifierProcess):
    """``envattest-server serve --tls-cert --tls-key`` on a loopback port."""

    ca: PrivateCa

    @property
    def url(self) -> str:
        """HTTPS base URL."""
        return f"https://127.0.0.1:{self.port}"

    def start(self, *extra: str, env: dict[str, str] | None = None) -> HttpsVerifierProcess:
        """Start with TLS and wait until /healthz answers over HTTPS."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "server", "serve",
                    "--data-dir", str(self.data_dir),
                    "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                    "--tls-cert", str(self.ca.server_cert), "--tls-key", str(self.ca.server_key),
                    *extra,
                ],
                stdout=log, stderr=subprocess.STDOUT, env=env or clean_env(), cwd=REPO,
            )  # fmt: skip
        trust = ssl.create_default_context(cafile=str(self.ca.ca_cert))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"verifier exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=trust).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError(f"HTTPS verifier did not start: {self.log_path.read_text()}")

    def manifest_hash(self) -> str:
        """The manifest's SHA-256, fetched trusting the private CA."""
        trust = ssl.create_default_context(cafile=str(self.ca.ca_cert))
        etag = httpx.get(f"{self.url}/v1/manifest", verify=trust).headers["ETag"]
        return str(etag).strip('"')


def https_verifier(directory: Path) -> HttpsVerifierProcess:
    """An initialised, unstarted HTTPS verifier with its own private CA."""
    plain = init_verifier(directory / "verifier")
    server = HttpsVerifierProcess(data_dir=plain.data_dir, port=plain.port)
    server.ca = make_private_ca(directory / "pki")
    return server
