"""The reference server: the verifier's essential work in a minimal ASGI app, so benchmark
figures can be read as a ratio to "the same work without the framework around it".

- ``POST /v1/challenge``: read the device row, answer a stateless nonce (expiry and random
  bytes under an HMAC of the device id), writing nothing, like the verifier;
- ``POST /v1/attest``: read the device row, ES256-verify the evidence, check the nonce's MAC
  and expiry, then ONE durable transaction (SQLite WAL ``synchronous=FULL`` / PostgreSQL
  commit) with an ``INSERT ... ON CONFLICT DO NOTHING`` spending the nonce and an INSERT of a
  hash-chained audit row; sign an ES256 JWT;
- ``GET /v1/authz`` and ``POST /v1/introspect``: verify the ES256 JWT, read the device row;
- ``GET /v1/authz`` with ``Authorization: DPoP``: also verify the proof (ES256 with the key in
  its header, the key's RFC 7638 thumbprint against the token's ``cnf.jkt``, ``htm``, ``htu``,
  ``iat``, ``ath``) and spend its ``jti`` (``INSERT ... ON CONFLICT DO NOTHING RETURNING``,
  committed before the answer: SQLite ``synchronous=NORMAL``, as the verifier's proof ids).

With group commit (default), one writer thread commits every attest queued meanwhile in one
transaction; each answer waits for its own commit. Run by ``bench/verifier.py``:

    python -m bench.reference --db URL --port P [--workers N] [--no-group-commit]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import queue
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from bench._driver import DPOP_EXTERNAL_URL  # what a forwarded request's proof must name

SETTINGS_ENV = "ENVATTEST_REFERENCE"
GATEWAY_SECRET = "reference-gateway-secret"
DPOP_IAT_WINDOW_S = 60
_ECDSA = ec.ECDSA(hashes.SHA256())
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ref_devices (device_id TEXT PRIMARY KEY, public_jwk TEXT"
    " NOT NULL, revoked_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS ref_nonces (nonce TEXT PRIMARY KEY, binding TEXT NOT NULL,"
    " expires_at BIGINT NOT NULL, consumed_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS ref_audit (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL,"
    " device_id TEXT, data TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ref_jtis (jti TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


class Database:
    """SQLite (stdlib) or PostgreSQL (psycopg), one connection per thread."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self._local = threading.local()

    def connect(self, *, durable: bool = True) -> Any:
        """This thread's connection (``durable=False``: commits without fsync)."""
        name = "durable" if durable else "relaxed"
        conn = getattr(self._local, name, None)
        if conn is None:
            if self.postgres:
                import psycopg

                conn = psycopg.connect(self.url, autocommit=True)
                if not durable:
                    conn.execute("SET synchronous_commit = on")  # as the verifier: full commit
            else:
                conn = sqlite3.connect(self.url, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                conn.execute("PRAGMA busy_timeout=5000")
            setattr(self._local, name, conn)
        return conn

    def sql(self, statement: str) -> str:
        """``%s`` placeholders for psycopg, ``?`` for sqlite3."""
        return statement if self.postgres else statement.replace("%s", "?")

    def begin(self, conn: Any) -> None:
        """Start a write transaction holding the write lock."""
        conn.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")
        if self.postgres:
            conn.execute("SELECT pg_advisory_xact_lock(1)")


def prepare(url: str, devices: dict[str, dict[str, str]]) -> None:
    """Create the reference tables and enroll ``devices`` (device id -> public JWK)."""
    db = Database(url)
    conn = db.connect()
    for statement in SCHEMA:
        conn.execute(statement)
    for device_id, jwk in devices.items():
        conn.execute(
            db.sql("INSERT INTO ref_devices (device_id, public_jwk) VALUES (%s, %s)"),
            (device_id, json.dumps(jwk)),
        )
    conn.close()


def _thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required members in order, no whitespace."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return _b64(hashlib.sha256(json.dumps(members, separators=(",", ":")).encode()).digest())


def _public_key(jwk: dict[str, str]) -> ec.EllipticCurvePublicKey:
    x, y = (int.from_bytes(_unb64(jwk[c]), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


class Reference:
    """The routes' work, on one database and one token key."""

    def __init__(self, db: Database, *, group_commit: bool) -> None:
        self.db = db
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.public = self.key.public_key()
        self.kid = "ref-1"
        self.mac_key = secrets.token_bytes(32)
        self.pool = ThreadPoolExecutor(max_workers=8)
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._thumbprints: dict[str, str] = {}
        self._queue: queue.SimpleQueue[tuple[tuple[Any, ...], Callable[[bool], None]]] = (
            queue.SimpleQueue()
        )
        self.group_commit = group_commit
        if group_commit:
            threading.Thread(target=self._writer, daemon=True).start()

    # database work (threads)

    def device(self, device_id: str) -> tuple[str, int | None] | None:
        conn = self.db.connect()
        row = conn.execute(
            self.db.sql("SELECT public_jwk, revoked_at FROM ref_devices WHERE device_id = %s"),
            (device_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def device_and_spend(self, device_id: str, jti: str, expires_at: int) -> bool:
        """Spend a proof id (committed: autocommit, relaxed sync) and read the device row;
        True if the id was new and the device is active."""
        conn = self.db.connect(durable=False)
        spent = conn.execute(  # fetchall steps to the end, which commits on SQLite
            self.db.sql(
                "INSERT INTO ref_jtis (jti, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (jti) DO NOTHING RETURNING jti"
            ),
            (jti, expires_at),
        ).fetchall()
        device = self.device(device_id)
        return bool(spent) and device is not None and device[1] is None

    def issue_nonce(self, device_id: str, now: int) -> str:
        """``expiry || random || HMAC(device id, expiry || random)``: nothing stored."""
        head = struct.pack(">I", now + 120) + secrets.token_bytes(12)
        return _b64(
            head + hmac.new(self.mac_key, device_id.encode() + head, "sha256").digest()[:16]
        )

    def nonce_expiry(self, nonce: str, device_id: str, now: int) -> int | None:
        """The expiry of a nonce issued here for ``device_id``, if it is still fresh."""
        raw = _unb64(nonce)
        head, mac = raw[:16], raw[16:]
        expected = hmac.new(self.mac_key, device_id.encode() + head, "sha256").digest()[:16]
        expires_at: int = struct.unpack(">I", head[:4])[0]
        ok = len(raw) == 32 and hmac.compare_digest(mac, expected) and expires_at > now
        return expires_at if ok else None

    def _settle(
        self, conn: Any, head: list[Any], nonce: str, device_id: str, expires_at: int, now: int
    ) -> bool:
        spent = conn.execute(
            self.db.sql(
                "INSERT INTO ref_nonces (nonce, binding, expires_at, consumed_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (nonce) DO NOTHING RETURNING nonce"
            ),
            (nonce, device_id, expires_at, now),
        ).fetchone()
        if spent is None:
            return False
        if not head:
            row = conn.execute(
                "SELECT seq, hash FROM ref_audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            head[:] = [row[0], row[1]] if row else [0, "0" * 64]
        data = json.dumps({"nonce": nonce, "decision": "allow"})
        seq, prev = head[0] + 1, head[1]
        digest = hashlib.sha256(f"{prev}|{seq}|{now}|{device_id}|{data}".encode()).hexdigest()
        conn.execute(
            self.db.sql(
                "INSERT INTO ref_audit (seq, at, device_id, data, prev_hash, hash)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
            ),
            (seq, now, device_id, data, prev, digest),
        )
        head[:] = [seq, digest]
        return True

    def settle(self, nonce: str, device_id: str, expires_at: int, now: int) -> bool:
        """One transaction for this settle alone."""
        conn = self.db.connect()
        self.db.begin(conn)
        try:
            ok = self._settle(conn, [], nonce, device_id, expires_at, now)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return ok

    def _writer(self) -> None:
        conn = self.db.connect()
        while True:
            batch = [self._queue.get()]
            while len(batch) < 128:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            head: list[Any] = []
            self.db.begin(conn)
            results = [self._settle(conn, head, *args) for args, _ in batch]
            conn.execute("COMMIT")
            for (_, done), ok in zip(batch, results, strict=True):
                done(ok)

    async def settle_async(self, nonce: str, device_id: str, expires_at: int, now: int) -> bool:
        loop = asyncio.get_running_loop()
        if not self.group_commit:
            return await loop.run_in_executor(
                self.pool, self.settle, nonce, device_id, expires_at, now
            )
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put(
            (
                (nonce, device_id, expires_at, now),
                lambda ok: loop.call_soon_threadsafe(future.set_result, ok),
            )
        )
        return await future

    # crypto

    def device_key(self, jwk_text: str) -> ec.EllipticCurvePublicKey:
        key = self._keys.get(jwk_text)
        if key is None:
            key = self._keys[jwk_text] = _public_key(json.loads(jwk_text))
        return key

    def thumbprint(self, jwk_text: str) -> str:
        jkt = self._thumbprints.get(jwk_text)
        if jkt is None:
            jkt = self._thumbprints[jwk_text] = _thumbprint(json.loads(jwk_text))
        return jkt

    def sign_token(self, device_id: str, now: int, jkt: str) -> str:
        header = _b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": self.kid}).encode())
        claims = {"iss": "reference", "sub": device_id, "aud": "envattest", "iat": now,
                  "exp": now + 900, "jti": secrets.token_urlsafe(16), "cnf": {"jkt": jkt},
                  "key_class": "software"}  # fmt: skip
        signing_input = f"{header}.{_b64(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), _ECDSA))
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def check_token(self, token: str, now: int) -> dict[str, Any]:
        signing_input, _, signature = token.rpartition(".")
        raw = _unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        self.public.verify(der, signing_input.encode(), _ECDSA)
        claims: dict[str, Any] = json.loads(_unb64(signing_input.split(".")[1]))
        if claims["exp"] <= now or claims["aud"] != "envattest":
            raise ValueError("expired or wrong audience")
        return claims

    def check_proof(
        self, proof: str, token: str, method: str, url: str, now: int
    ) -> tuple[str, str]:
        """(jti, thumbprint of the proof's key) of a valid DPoP proof for this request."""
        header_b64, payload_b64, signature = proof.split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
        if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256":
            raise ValueError("not a DPoP proof")
        jwk_text = json.dumps(header["jwk"], sort_keys=True)
        raw = _unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        self.device_key(jwk_text).verify(der, f"{header_b64}.{payload_b64}".encode(), _ECDSA)
        ath = _b64(hashlib.sha256(token.encode()).digest())
        if (claims["htm"], claims["htu"], claims["ath"]) != (method, url, ath):
            raise ValueError("the proof is for another request")
        if abs(now - int(claims["iat"])) > DPOP_IAT_WINDOW_S:
            raise ValueError("stale proof")
        return str(claims["jti"]), self.thumbprint(jwk_text)


async def _read_body(receive: Callable[[], Any]) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def create_app() -> Callable[..., Any]:
    """The ASGI app, from the settings in ``ENVATTEST_REFERENCE``."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    ref = Reference(Database(settings["db"]), group_commit=settings["group_commit"])

    async def respond(send: Callable[..., Any], status: int, body: bytes = b"") -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def challenge(body: bytes) -> tuple[int, bytes]:
        device_id = json.loads(body)["device_id"]
        device = await asyncio.get_running_loop().run_in_executor(ref.pool, ref.device, device_id)
        if device is None or device[1] is not None:
            return 401, b'{"error":"unknown device"}'
        nonce = ref.issue_nonce(device_id, int(time.time()))
        return 200, json.dumps({"nonce": nonce, "expires_in": 120}).encode()

    async def attest(body: bytes) -> tuple[int, bytes]:
        header_b64, payload_b64, signature = body.split(b".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
        if header.get("alg") != "ES256" or header.get("kid") != claims.get("sub"):
            return 400, b'{"error":"bad header"}'
        device = await asyncio.get_running_loop().run_in_executor(
            ref.pool, ref.device, header["kid"]
        )
        if device is None or device[1] is not None:
            return 401, b'{"error":"unknown device"}'
        raw = _unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        ref.device_key(device[0]).verify(der, header_b64 + b"." + payload_b64, _ECDSA)
        now = int(time.time())
        if abs(now - int(claims["iat"])) > 300:
            return 401, b'{"error":"iat"}'
        expires_at = ref.nonce_expiry(claims["eat_nonce"], header["kid"], now)
        if expires_at is None or not await ref.settle_async(
            claims["eat_nonce"], header["kid"], expires_at, now
        ):
            return 401, b'{"error":"nonce"}'
        token = ref.sign_token(header["kid"], now, ref.thumbprint(device[0]))
        answer = {"decision": "allow", "reasons": [], "access_token": token,
                  "token_type": "Bearer", "expires_in": 900}  # fmt: skip
        return 200, json.dumps(answer).encode()

    async def check(token: str) -> dict[str, Any] | None:
        claims = ref.check_token(token, int(time.time()))
        device = await asyncio.get_running_loop().run_in_executor(
            ref.pool, ref.device, claims["sub"]
        )
        return claims if device is not None and device[1] is None else None

    async def check_dpop(token: str, headers: dict[bytes, bytes]) -> bool:
        now = int(time.time())
        claims = ref.check_token(token, now)
        method = headers.get(b"x-original-method", b"").decode()
        url = DPOP_EXTERNAL_URL + headers.get(b"x-original-uri", b"").decode()
        jti, jkt = ref.check_proof(headers.get(b"dpop", b"").decode(), token, method, url, now)
        if claims["cnf"]["jkt"] != jkt:
            return False
        return await asyncio.get_running_loop().run_in_executor(
            ref.pool, ref.device_and_spend, claims["sub"], jti, now + DPOP_IAT_WINDOW_S
        )

    async def app(
        scope: dict[str, Any], receive: Callable[[], Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await _read_body(receive)
        path = scope["path"]
        headers = dict(scope["headers"])
        try:
            if path == "/v1/challenge":
                status, answer = await challenge(body)
            elif path == "/v1/attest":
                status, answer = await attest(body)
            elif path == "/v1/authz":
                authorization = headers.get(b"authorization", b"").decode()
                if authorization.startswith("DPoP "):
                    ok = await check_dpop(authorization.removeprefix("DPoP "), headers)
                else:
                    ok = await check(authorization.removeprefix("Bearer ")) is not None
                status, answer = (204, b"") if ok else (401, b"")
            elif path == "/v1/introspect":
                if headers.get(b"authorization") != f"Bearer {GATEWAY_SECRET}".encode():
                    status, answer = 401, b""
                else:
                    token = body.decode().removeprefix("token=")
                    claims = await check(token)
                    doc = {"active": True, **claims} if claims else {"active": False}
                    status, answer = 200, json.dumps(doc).encode()
            elif path == "/healthz":
                status, answer = 200, b'{"status":"ok"}'
            else:
                status, answer = 404, b""
        except Exception as exc:  # a refusal, as the verifier would give
            status, answer = 401, json.dumps({"error": type(exc).__name__}).encode()
        await respond(send, status, answer)

    return app


def main() -> None:
    """Serve with uvicorn (httptools, uvloop), like ``envattest-server serve``."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="bench.reference")
    parser.add_argument("--db", required=True, help="sqlite file path or postgresql URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-group-commit", action="store_true")
    args = parser.parse_args()
    os.environ[SETTINGS_ENV] = json.dumps({"db": args.db, "group_commit": not args.no_group_commit})
    uvicorn.run(
        "bench.reference:create_app", factory=True, host="127.0.0.1", port=args.port,
        workers=args.workers, log_level="warning", access_log=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
