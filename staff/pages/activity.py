"""The activity log: who changed what, and when (GET /activity)."""

from sanic import Blueprint
from sanic.request import Request

from clinic import store
from staff import audit
from staff.pages.console import Console


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("activity")

    @pages.get("/activity")
    async def activity(request: Request):
        entries = await store.run_blocking(audit.recent, 300)
        return console.render(request, "activity.html", entries=entries)

    return pages
