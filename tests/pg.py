"""A throwaway PostgreSQL server for tests and benchmarks.

``running_postgres(tmp_dir)`` starts one on a free loopback port (initdb + pg_ctl, trust auth
on 127.0.0.1 only, fsync off) and yields a SQLAlchemy URL to its ``postgres`` database;
``postgres_url`` is a pytest fixture giving each test a fresh database on one session-wide
server. Missing binaries skip locally and fail under CI (``tests._support``).

As root (CI), initdb refuses to run, so the cluster is created by the ``postgres`` system user
(or ``nobody``) via ``runuser``, in a directory under the system temp dir that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests._support import free_port, need_tool

HOW = "apt-get install postgresql (binaries in /usr/lib/postgresql/*/bin)"
_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def _service_user() -> pwd.struct_passwd | None:
    """Who runs PostgreSQL: ourselves, or as root an unprivileged system user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise AssertionError("running as root with neither a postgres nor a nobody user")


def _run(argv: list[str], user: pwd.struct_passwd | None, log: Path) -> None:
    command = ["runuser", "-u", user.pw_name, "--", *argv] if user is not None else argv
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd="/")
    if done.returncode != 0:
        detail = log.read_text(errors="replace") if log.exists() else ""
        raise AssertionError(f"{' '.join(argv[:2])} failed: {done.stderr}{done.stdout}{detail}")


@contextmanager
def running_postgres(tmp_dir: Path) -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1; yield ``postgresql+psycopg://postgres@127.0.0.1:P/postgres``.

    Stopped (immediate) and deleted on exit. ``tmp_dir`` holds it unless running as root,
    where the service user could not enter pytest's private temp dirs.
    """
    initdb = need_tool("initdb", HOW)
    pg_ctl = need_tool("pg_ctl", HOW)
    user = _service_user()
    if user is None:
        base = Path(tempfile.mkdtemp(prefix="pg-", dir=tmp_dir))
    else:
        base = Path(tempfile.mkdtemp(prefix="envattest-pg-"))
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = base / "data", base / "server.log"
    try:
        _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-sync", "--no-instructions"], user, log)  # fmt: skip
        port = 0
        for _attempt in range(3):  # a free port can be taken before the server binds it
            port = free_port()
            options = f"-p {port} -h 127.0.0.1 -k {base} " + " ".join(f"-c {s}" for s in _SETTINGS)
            try:
                _run([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options,
                      "start"], user, log)  # fmt: skip
                break
            except AssertionError:
                if _attempt == 2:
                    raise
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], user, log)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """CREATE DATABASE on the server; yield its URL; DROP it afterwards."""
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PostgreSQL server for the test session (URL of its ``postgres`` database)."""
    with running_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with fresh_database(postgres_server) as url:
        yield url


def database_url(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> str:
    """A fresh empty database of ``kind``: a SQLite file in ``tmp_path`` for ``"sqlite"``,
    else a PostgreSQL database of its own (the ``postgres_url`` fixture)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
