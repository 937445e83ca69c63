"""Sign-in, sign-out and the session check every page depends on.

Cookies: the session token (HttpOnly, SameSite=Strict, Secure and ``__Host-`` under TLS) and,
before sign-in, a CSRF cookie that the sign-in form must echo (double submit). Forms of a
signed-in user carry a token derived from the session, so a cross-site POST cannot forge one.
Every sign-in attempt and every page view is an audit record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from server.console.accounts import SignedIn
from server.console.context import ConsoleContext
from server.console.errors import SessionError, SignInError, SignInThrottledError
from server.console.render import render


class SignInRequired(Exception):
    """Raised by the session dependency; answered with a redirect to the sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CsrfError(Exception):
    """A form without the token it must carry."""


def session_cookie(ctx: ConsoleContext) -> str:
    """The session cookie's name (``__Host-`` prefixed under TLS: host-only, Secure, Path=/)."""
    return "__Host-envattest-console" if ctx.secure_cookies else "envattest-console"


def _csrf_cookie(ctx: ConsoleContext) -> str:
    return "__Host-envattest-csrf" if ctx.secure_cookies else "envattest-csrf"


def form_token(session_token: str) -> str:
    """The CSRF token of a signed-in user's forms."""
    return hashlib.sha256(b"envattest-console-csrf:" + session_token.encode()).hexdigest()


def _set_cookie(
    ctx: ConsoleContext, response: Response, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=ctx.secure_cookies,
    )


def check_form_token(request: Request, token: str) -> None:
    """Refuse a signed-in POST whose form token does not belong to its session."""
    ctx: ConsoleContext = request.app.state.ctx
    session = request.cookies.get(session_cookie(ctx), "")
    if not session or not hmac.compare_digest(form_token(session), token):
        raise CsrfError("the form is stale; reload the page and try again")


def viewer(request: Request) -> SignedIn:
    """The signed-in user of this request, after auditing the page view; else redirect."""
    ctx: ConsoleContext = request.app.state.ctx
    try:
        signed_in = ctx.sessions.check(request.cookies.get(session_cookie(ctx)))
    except SessionError as exc:
        raise SignInRequired(str(exc)) from exc
    query = str(request.url.query)[:500]
    ctx.record(
        "view",
        {
            "user": signed_in.user.username,
            "path": request.url.path,
            "query": query,
            "client": request.client.host if request.client else None,
        },
    )
    request.state.viewer = signed_in
    request.state.form_token = form_token(request.cookies.get(session_cookie(ctx), ""))
    return signed_in


Viewer = Annotated[SignedIn, Depends(viewer)]


def router() -> APIRouter:
    """``/login`` and ``/logout``."""
    api = APIRouter()

    @api.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, reason: str = "") -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", {"csrf": token, "message": reason[:200]})
        _set_cookie(ctx, response, _csrf_cookie(ctx), token, 3600)
        return response

    @api.post("/login")
    async def login(
        request: Request,
        username: Annotated[str, Form(max_length=128)],
        password: Annotated[str, Form(max_length=1024)],
        csrf: Annotated[str, Form(max_length=64)],
    ) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        client = request.client.host if request.client else "unknown"
        expected = request.cookies.get(_csrf_cookie(ctx), "")
        if not expected or not hmac.compare_digest(expected, csrf):
            return _login_again(request, "the sign-in form expired; try again", 400)
        wait = max(ctx.ip_limiter.take(client), ctx.user_limiter.take(username))
        try:
            if wait > 0:
                raise SignInThrottledError(int(wait) + 1)
            user = await run_in_threadpool(ctx.authenticator.authenticate, username, password)
        except SignInThrottledError as exc:
            await run_in_threadpool(
                ctx.record,
                "sign-in",
                {"user": username, "ok": False, "reason": "throttled", "client": client},
            )
            response = _login_again(request, str(exc), 429)
            response.headers["Retry-After"] = str(exc.retry_after_s)
            return response
        except SignInError as exc:
            await run_in_threadpool(
                ctx.record,
                "sign-in",
                {"user": username, "ok": False, "reason": exc.reason, "client": client},
            )
            return _login_again(request, str(exc), 401)
        token = await run_in_threadpool(ctx.sessions.open, user, ctx.authenticator.provider)
        await run_in_threadpool(
            ctx.record,
            "sign-in",
            {
                "user": username,
                "ok": True,
                "provider": ctx.authenticator.provider,
                "client": client,
            },
        )
        response = RedirectResponse("/", status_code=303)
        _set_cookie(ctx, response, session_cookie(ctx), token, ctx.settings.session_ttl_s)
        response.delete_cookie(_csrf_cookie(ctx), path="/")
        return response

    @api.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form(max_length=64)]) -> Response:
        ctx: ConsoleContext = request.app.state.ctx
        check_form_token(request, csrf)
        ctx.sessions.close(request.cookies.get(session_cookie(ctx)))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(session_cookie(ctx), path="/")
        return response

    return api


def _login_again(request: Request, message: str, status: int) -> Response:
    ctx: ConsoleContext = request.app.state.ctx
    token = secrets.token_urlsafe(24)
    response = render(request, "login.html", {"csrf": token, "message": message}, status=status)
    _set_cookie(ctx, response, _csrf_cookie(ctx), token, 3600)
    return response
