"""Signing in and out: GET/POST /login, POST /logout."""

import secrets

from sanic import Blueprint, response
from sanic.request import Request

from clinic import store
from staff import auth
from staff.pages.console import SECURITY_HEADERS, Console, Refused, actor, record, redirect

LOGIN_COOKIE_SECONDS = 3600


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("signin")
    settings = console.settings

    def login_page(request: Request, error: str = "", status: int = 200, username: str = ""):
        # reused while it lasts: a second tab (or the favicon's redirect) must not
        # invalidate the form already shown
        token = request.cookies.get(auth.LOGIN_COOKIE) or ""
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        reply = response.html(
            console.templates.get_template("login.html").render(
                session=None, login_token=token, error=error, username=username,
                next=request.args.get("next") or ((request.form or {}).get("next") if request.method == "POST" else ""),
            ),
            status=status,
        )
        console.set_cookie(reply, auth.LOGIN_COOKIE, token, LOGIN_COOKIE_SECONDS)
        for header, value in SECURITY_HEADERS.items():
            reply.headers[header] = value
        return reply

    @pages.get("/login")
    async def login_form(request: Request):
        if request.ctx.session is not None:
            return redirect("/inbox")
        return login_page(request)

    @pages.post("/login")
    async def login(request: Request):
        form = request.form or {}
        if not auth.csrf_matches(request.cookies.get(auth.LOGIN_COOKIE), form.get("csrf_token")):
            raise Refused("The sign-in form expired or did not come from this console: reload it and try again.")
        username = (form.get("username") or "").strip().lower()
        result = await store.run_blocking(
            auth.sign_in, username, form.get("password") or "",
            settings.max_failed_logins, settings.lockout_minutes, settings.session_hours,
        )
        if not result.ok:
            # what was typed as a name is recorded only if it looks like one (not a password)
            typed = username if auth.USERNAME.match(username) else "?"
            await record(typed, "sign_in_failed")
            return login_page(request, result.message, status=401, username=username)
        await record(username, "sign_in")
        target = form.get("next") or "/inbox"
        if not target.startswith("/") or target.startswith("//"):
            target = "/inbox"
        reply = redirect(target)
        console.set_cookie(reply, auth.SESSION_COOKIE, result.session_token, settings.session_hours * 3600)
        del reply.cookies[auth.LOGIN_COOKIE]
        return reply

    @pages.post("/logout")
    async def logout(request: Request):
        await store.run_blocking(auth.sign_out, request.cookies.get(auth.SESSION_COOKIE))
        await record(actor(request), "sign_out")
        reply = redirect("/login")
        del reply.cookies[auth.SESSION_COOKIE]
        return reply

    return pages
