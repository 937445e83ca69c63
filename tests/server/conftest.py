"""Fixtures for server tests: PostgreSQL (``tests.pg``)."""

from __future__ import annotations

from tests.pg import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
