"""The staff console's web app (Sanic): the pages (staff/pages/), sessions, CSRF and the model server.

Server-rendered pages; the only script is static/console.js (search, live
character count, retraining progress). Every page and action needs a
session; every form carries the session's CSRF token.
"""

import hashlib
import logging
from urllib.parse import urlencode, urlparse

from sanic import Sanic, response
from sanic.exceptions import NotFound
from sanic.request import Request

from clinic import store
from staff import auth, model_server
from staff.pages import activity, answers, conversation, inbox, models, signin
from staff.pages.console import SECURITY_HEADERS, STAFF_DIR, Console, Refused, redirect
from staff.settings import Settings

PUBLIC_PATHS = {"/login", "/static/console.css", "/favicon.ico"}
STATIC_FILES = {"console.js": "application/javascript", "console.css": "text/css"}
PAGES = (signin, inbox, conversation, answers, models, activity)


def create_app(settings: Settings) -> Sanic:
    app = Sanic("staff_console")
    app.config.REQUEST_MAX_SIZE = 512 * 1024
    app.config.FALLBACK_ERROR_FORMAT = "html"
    console = Console(settings)
    for page in PAGES:
        app.blueprint(page.blueprint(console))
    # Models for the Rasa servers: the API token, not a staff session.
    files = model_server.ModelFiles(settings, console.registry, console.retrainer)
    app.blueprint(model_server.blueprint(settings, files))

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

    def error_page(title: str, message: str, status: int) -> response.HTTPResponse:
        html = console.templates.get_template("error.html").render(session=None, title=title, message=message)
        return response.html(html, status=status)

    @app.exception(Refused)
    async def refused(request: Request, error: Refused):
        return error_page("Refused", str(error), 403)

    @app.exception(NotFound)
    async def not_found(request: Request, error: NotFound):
        return error_page("Not found", "There is no such page.", 404)

    @app.get("/favicon.ico")
    async def favicon(request: Request):
        return response.empty()

    @app.get("/static/<name>")
    async def static(request: Request, name: str):
        if name not in STATIC_FILES:
            raise NotFound("no such file")
        return await response.file(STAFF_DIR / "static" / name, mime_type=STATIC_FILES[name])

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
