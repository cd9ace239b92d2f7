"""The staff console's web app (Sanic): sign-in, inbox, teaching, retraining, publishing.

Server-rendered pages; the only script is static/console.js (search, live
character count, retraining progress). Every page and action needs a
session; every form carries the session's CSRF token.
"""

import hashlib
import json
import logging
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlencode, urlparse

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Sanic, response
from sanic.exceptions import NotFound, SanicException
from sanic.request import Request

from clinic import store
from staff import audit, auth, inbox, model_server
from staff.conversations import Conversations, TrackerStoreUnavailable
from staff.publishing import PublishFailed, Publisher
from staff.rasa_api import RasaUnavailable
from staff.settings import Settings
from staff.training import Busy, Retrainer
from staff.training_data import (
    MAX_ANSWER_CHARS, MIN_EXAMPLES_PER_ANSWER, OUT_OF_SCOPE, SMS_AIM_CHARS, SMS_MAX_CHARS,
    EditRefused, TrainingData, topic_title,
)

HERE = Path(__file__).resolve().parent
PUBLIC_PATHS = {"/login", "/static/console.css", "/favicon.ico"}
STATIC_FILES = {"console.js": "application/javascript", "console.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make browsers send Origin: null
    "Cache-Control": "no-store",
}
LOGIN_COOKIE_SECONDS = 3600


class Refused(SanicException):
    status_code = 403
    quiet = True


def visitor_label(sender_id: str, channel: Optional[str]) -> str:
    """Staff see which conversation, never the visitor's number or name."""
    return f"{channel or 'unknown'} visitor {hashlib.sha256(sender_id.encode()).hexdigest()[:8]}"


def create_app(settings: Settings) -> Sanic:
    app = Sanic("staff_console")
    app.config.REQUEST_MAX_SIZE = 512 * 1024
    app.config.FALLBACK_ERROR_FORMAT = "html"
    templates = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""
    templates.filters["percent"] = lambda value: f"{value * 100:.1f}%" if value is not None else ""
    templates.globals.update(
        kind_labels=inbox.KIND_LABELS, topic_title=topic_title,
        sms_aim=SMS_AIM_CHARS, sms_max=SMS_MAX_CHARS, max_answer=MAX_ANSWER_CHARS,
    )
    data = TrainingData(settings.project_dir)
    retrainer = Retrainer(settings)
    publisher = Publisher(settings)
    conversations = Conversations(publisher.servers, settings)
    # Models for the Rasa servers: the API token, not a staff session.
    app.blueprint(model_server.blueprint(settings, model_server.ModelFiles(settings, publisher, retrainer)))
    flashes: Dict[str, List[str]] = defaultdict(list)

    def render(request: Request, name: str, http_status: int = 200, **context) -> response.HTTPResponse:
        session = getattr(request.ctx, "session", None)
        key = getattr(request.ctx, "session_key", None)
        messages = flashes.pop(key, []) if key else []
        html = templates.get_template(name).render(
            session=session, csrf=session.csrf_token if session else "", messages=messages,
            path=request.path, **context,
        )
        return response.html(html, status=http_status)

    def flash(request: Request, message: str) -> None:
        flashes[request.ctx.session_key].append(message)

    def redirect(location: str) -> response.HTTPResponse:
        return response.redirect(location, status=303)

    def actor(request: Request) -> str:
        return request.ctx.session.username

    # ---- every request: session, CSRF, headers ----

    @app.on_request
    async def require_session(request: Request):
        request.ctx.session = None
        request.ctx.session_key = None
        token = request.cookies.get(auth.SESSION_COOKIE)
        session = await store.run_blocking(auth.session_for, token) if token else None
        if session is not None:
            request.ctx.session = session
            request.ctx.session_key = hashlib.sha256(token.encode()).hexdigest()
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin and urlparse(origin).netloc != request.host:
                raise Refused("This form was not sent from the console.")
        if request.path in PUBLIC_PATHS or request.path.startswith(model_server.PREFIX):
            return None
        if session is None:
            if request.method == "GET" and not request.path.endswith("/state"):
                return redirect("/login?" + urlencode({"next": request.path}))
            return response.json({"error": "sign in first"}, status=401)
        if request.method == "POST":
            if not auth.csrf_matches(session.csrf_token, request.form.get("csrf_token") if request.form else None):
                raise Refused("The form's security token is missing or wrong: reload the page and try again.")
        return None

    @app.on_response
    async def security_headers(request: Request, reply: response.HTTPResponse):
        for header, value in SECURITY_HEADERS.items():
            reply.headers.setdefault(header, value)

    @app.exception(Refused)
    async def refused(request: Request, error: Refused):
        return response.html(
            templates.get_template("error.html").render(session=None, title="Refused", message=str(error)),
            status=403,
        )

    @app.exception(NotFound)
    async def not_found(request: Request, error: NotFound):
        return response.html(
            templates.get_template("error.html").render(session=None, title="Not found", message="There is no such page."),
            status=404,
        )

    def set_cookie(reply, name: str, value: str, max_age: int) -> None:
        reply.cookies[name] = value
        cookie = reply.cookies[name]
        cookie["httponly"] = True
        cookie["samesite"] = "Strict"
        cookie["path"] = "/"
        cookie["max-age"] = max_age
        if settings.secure_cookie:
            cookie["secure"] = True

    # ---- sign-in ----

    def login_page(request: Request, error: str = "", status: int = 200, username: str = ""):
        # reused while it lasts: a second tab (or the favicon's redirect) must not
        # invalidate the form already shown
        token = request.cookies.get(auth.LOGIN_COOKIE) or ""
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        reply = response.html(
            templates.get_template("login.html").render(
                session=None, login_token=token, error=error, username=username,
                next=request.args.get("next") or ((request.form or {}).get("next") if request.method == "POST" else ""),
            ),
            status=status,
        )
        set_cookie(reply, auth.LOGIN_COOKIE, token, LOGIN_COOKIE_SECONDS)
        for header, value in SECURITY_HEADERS.items():
            reply.headers[header] = value
        return reply

    @app.get("/login")
    async def login_form(request: Request):
        if request.ctx.session is not None:
            return redirect("/inbox")
        return login_page(request)

    @app.post("/login")
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
            await store.run_blocking(audit.record, typed, "sign_in_failed")
            return login_page(request, result.message, status=401, username=username)
        await store.run_blocking(audit.record, username, "sign_in")
        target = form.get("next") or "/inbox"
        if not target.startswith("/") or target.startswith("//"):
            target = "/inbox"
        reply = redirect(target)
        set_cookie(reply, auth.SESSION_COOKIE, result.session_token, settings.session_hours * 3600)
        del reply.cookies[auth.LOGIN_COOKIE]
        return reply

    @app.post("/logout")
    async def logout(request: Request):
        await store.run_blocking(auth.sign_out, request.cookies.get(auth.SESSION_COOKIE))
        await store.run_blocking(audit.record, actor(request), "sign_out")
        reply = redirect("/login")
        del reply.cookies[auth.SESSION_COOKIE]
        return reply

    @app.get("/favicon.ico")
    async def favicon(request: Request):
        return response.empty()

    @app.get("/static/<name>")
    async def static(request: Request, name: str):
        if name not in STATIC_FILES:
            raise NotFound("no such file")
        return await response.file(HERE / "static" / name, mime_type=STATIC_FILES[name])

    # ---- inbox and teaching ----

    @app.get("/")
    async def home(request: Request):
        return redirect("/inbox")

    @app.get("/inbox")
    async def inbox_page(request: Request):
        status = request.args.get("status", "new")
        status = status if status in inbox.STATUSES or status == "all" else "new"
        order = "frequent" if request.args.get("order") == "frequent" else "newest"
        groups = await store.run_blocking(inbox.inbox, None if status == "all" else status, order)
        return render(request, "inbox.html", groups=groups, status=status, order=order, statuses=inbox.STATUSES)

    def teach_context(refs: str) -> Dict:
        items = inbox.find(refs)
        if not items:
            raise NotFound("no such inbox item")
        group = inbox.group(items)[0]
        for extra in inbox.group(items)[1:]:
            group.items += extra.items
        facts = data.facts()
        guesses = {guess["name"]: guess["confidence"] for guess in group.guesses}
        answers = [
            {
                "label": a.label, "title": a.title, "text": data._fill(a.text, facts),
                "count": len(a.examples), "guess": guesses.get(a.label),
                # searching finds an answer by the ways visitors ask it, too
                "search": " ".join([a.label, *a.examples]),
            }
            for a in data.answers()
        ]
        answers.sort(key=lambda a: -(a["guess"] or 0.0))
        return {
            "group": group, "answers": answers, "facts": facts,
            "suggested_topic": data.suggest_topic(group.text),
            "min_examples": MIN_EXAMPLES_PER_ANSWER,
            "visitor_label": visitor_label,
        }

    @app.get("/inbox/item")
    async def item_page(request: Request):
        context = await store.run_blocking(teach_context, request.args.get("refs", ""))
        return render(request, "item.html", **context)

    async def teach_error(request: Request, refs: str, error: str, **form):
        context = await store.run_blocking(teach_context, refs)
        return render(request, "item.html", http_status=422, error=error, form=form, **context)

    @app.post("/teach/phrasing")
    async def teach_phrasing(request: Request):
        form = request.form
        refs, label, text = form.get("refs", ""), form.get("label", ""), form.get("text", "")
        try:
            change = await store.run_blocking(data.add_phrasing, label, text)
        except EditRefused as error:
            return await teach_error(request, refs, str(error), text=text, label=label)
        await store.run_blocking(inbox.set_status, refs, "taught")
        await store.run_blocking(
            audit.record, actor(request), change.action, change.target, file=change.path,
            diff=change.diff, items=refs, **change.detail,
        )
        flash(request, f"Taught: “{change.detail['phrasing']}” now belongs to “{topic_title(label)}”. "
                       "Retrain and publish to put it live.")
        return redirect("/inbox")

    @app.post("/teach/new-answer")
    async def teach_new_answer(request: Request):
        form = request.form
        refs = form.get("refs", "")
        phrasings = (form.get("phrasings") or "").splitlines()
        try:
            change = await store.run_blocking(
                data.new_answer, form.get("topic", ""), phrasings, form.get("answer", ""),
                form.get("book_button") == "on",
            )
        except EditRefused as error:
            return await teach_error(
                request, refs, str(error), topic=form.get("topic", ""),
                phrasings=form.get("phrasings", ""), answer=form.get("answer", ""),
            )
        await store.run_blocking(inbox.set_status, refs, "taught")
        await store.run_blocking(
            audit.record, actor(request), change.action, change.target, file=change.path,
            diff=change.diff, items=refs, **change.detail,
        )
        flash(request, f"New answer “{topic_title(change.target)}” written to {change.path}. Retrain and publish to put it live.")
        return redirect("/inbox")

    @app.post("/teach/status")
    async def teach_status(request: Request):
        form = request.form
        refs, status = form.get("refs", ""), form.get("status", "")
        if status not in ("out_of_scope", "dismissed", "new"):
            raise Refused("Unknown status.")
        change = None
        if status == "out_of_scope" and form.get("teach_decline") == "on":
            items = await store.run_blocking(inbox.find, refs)
            text = items[0].text if items else ""
            try:
                change = await store.run_blocking(data.add_phrasing, OUT_OF_SCOPE, form.get("text") or text)
            except EditRefused as error:
                return await teach_error(request, refs, str(error))
        changed = await store.run_blocking(inbox.set_status, refs, status)
        if change:
            await store.run_blocking(
                audit.record, actor(request), change.action, change.target, file=change.path,
                diff=change.diff, items=refs, **change.detail,
            )
        await store.run_blocking(audit.record, actor(request), "set_status", refs, status=status, items=changed)
        labels = {"out_of_scope": "marked out of scope", "dismissed": "dismissed", "new": "put back in the inbox"}
        later = " The assistant will learn to decline it after the next retraining." if change else ""
        flash(request, f"{changed} message(s) {labels[status]}.{later}")
        return redirect("/inbox")

    @app.get("/conversation")
    async def conversation(request: Request):
        items = await store.run_blocking(inbox.find, request.args.get("ref", ""))
        if not items:
            raise NotFound("no such inbox item")
        item = items[0]
        error, events = None, []
        try:
            for event in await store.run_blocking(conversations.events, item.sender_id):
                if event.get("event") == "user":
                    intent = (event.get("parse_data") or {}).get("intent") or {}
                    events.append({"who": "visitor", "text": event.get("text"), "at": event.get("timestamp"),
                                   "note": f"{intent.get('name')} {intent.get('confidence', 0):.2f}" if intent.get("name") else ""})
                elif event.get("event") == "bot":
                    events.append({"who": "assistant", "text": event.get("text"), "at": event.get("timestamp"), "note": ""})
        except (RasaUnavailable, TrackerStoreUnavailable) as error_:
            error = f"The conversation could not be loaded: {error_}"
        return render(request, "conversation.html", item=item, events=events, error=error,
                      visitor=visitor_label(item.sender_id, item.channel))

    # ---- answers ----

    @app.get("/answers")
    async def answers_page(request: Request):
        facts = await store.run_blocking(data.facts)
        answers = await store.run_blocking(data.answers)
        return render(request, "answers.html", answers=answers, fill=lambda text: data._fill(text, facts))

    @app.get("/answers/edit")
    async def answer_edit_page(request: Request):
        try:
            answer = await store.run_blocking(data.answer, request.args.get("label", ""))
        except EditRefused:
            raise NotFound("no such answer")
        facts = await store.run_blocking(data.facts)
        return render(request, "answer_edit.html", answer=answer, facts_json=json.dumps(facts))

    @app.post("/answers/edit")
    async def answer_edit(request: Request):
        form = request.form
        label = form.get("label", "")
        try:
            variation = int(form.get("variation", "0"))
            change = await store.run_blocking(data.edit_answer, label, form.get("text", ""), variation)
        except (EditRefused, ValueError) as error:
            try:
                answer = await store.run_blocking(data.answer, label)
            except EditRefused:
                raise NotFound("no such answer")
            facts = await store.run_blocking(data.facts)
            return render(request, "answer_edit.html", http_status=422, answer=answer, facts_json=json.dumps(facts),
                          error=str(error), text=form.get("text", ""))
        await store.run_blocking(
            audit.record, actor(request), change.action, change.target, file=change.path, diff=change.diff, **change.detail
        )
        flash(request, f"Answer “{topic_title(label)}” changed. Retrain and publish to put it live.")
        return redirect("/answers")

    # ---- retraining and publishing ----

    def model_context() -> Dict:
        jobs = retrainer.jobs()[:8]
        live = publisher.live()
        return {
            "jobs": jobs, "current": retrainer.current(), "live": live,
            "previous": publisher.previous(), "history": publisher.history(10),
            "servers": publisher.server_states(),
        }

    @app.get("/model")
    async def model_page(request: Request):
        context = await store.run_blocking(model_context)
        return render(request, "model.html", **context)

    @app.post("/retrain")
    async def retrain(request: Request):
        protected = await store.run_blocking(publisher.protected_candidates)
        try:
            job = await store.run_blocking(retrainer.start, actor(request), protected)
        except Busy as error:
            flash(request, f"Not started: {error}.")
            return redirect("/model")
        await store.run_blocking(audit.record, actor(request), "retrain", job.id)
        return redirect(f"/retrain/{job.id}")

    @app.get("/retrain/<job_id>/state")
    async def job_state(request: Request, job_id: str):
        job = retrainer.job(job_id)
        if job is None:
            return response.json({"error": "no such retraining"}, status=404)
        try:
            since = max(0, int(request.args.get("since", "0")))
        except ValueError:
            since = 0
        return response.json(job.state(since))

    @app.get("/retrain/<job_id>")
    async def job_page(request: Request, job_id: str):
        job = retrainer.job(job_id)
        if job is None:
            raise NotFound("no such retraining")
        live = await store.run_blocking(publisher.live)
        return render(request, "job.html", job=job, live=live)

    @app.post("/publish")
    async def publish(request: Request):
        job = retrainer.job(request.form.get("job", ""))
        if job is None:
            raise NotFound("no such retraining")
        try:
            await store.run_blocking(publisher.publish, job, actor(request))
        except (PublishFailed, RasaUnavailable) as error:
            await store.run_blocking(audit.record, actor(request), "publish_failed", job.id, reason=str(error))
            flash(request, f"Not published: {error}")
            return redirect(f"/retrain/{job.id}")
        flash(request, "Published: the assistant now answers with the new model.")
        return redirect("/model")

    @app.post("/rollback")
    async def rollback(request: Request):
        try:
            published = await store.run_blocking(publisher.rollback, actor(request))
            flash(request, f"Rolled back to {published.candidate}.")
        except (PublishFailed, RasaUnavailable) as error:
            await store.run_blocking(audit.record, actor(request), "rollback_failed", reason=str(error))
            flash(request, f"Not rolled back: {error}")
        return redirect("/model")

    @app.get("/activity")
    async def activity(request: Request):
        entries = await store.run_blocking(audit.recent, 300)
        return render(request, "activity.html", entries=entries)

    return app


def serve(settings: Settings) -> None:
    store.engine()  # tables exist before the first request
    # The console's own messages (which model was served); none name a visitor.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.getLogger("staff").addHandler(handler)
    logging.getLogger("staff").setLevel(logging.INFO)
    app = create_app(settings)
    print(f"Staff console: http://{settings.host}:{settings.port}/", flush=True)
    # no access log: URLs and form posts are nobody's business in the logs
    app.run(host=settings.host, port=settings.port, workers=1, access_log=False, motd=False)
