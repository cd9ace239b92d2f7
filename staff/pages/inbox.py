"""The inbox and teaching: what the assistant could not answer, and the forms that teach it.

    GET  /, /inbox          the unanswered questions, grouped
    GET  /inbox/item        one group, with the answers it could be taught
    POST /teach/phrasing    a new phrasing of an existing answer
    POST /teach/new-answer  a new answer with its phrasings
    POST /teach/status      out of scope, dismissed, or back in the inbox
"""

from typing import Dict

from sanic import Blueprint
from sanic.exceptions import NotFound
from sanic.request import Request

from clinic import store
from staff import inbox
from staff.pages.console import Console, Refused, actor, record, record_change, redirect, visitor_label
from staff.training_data import MIN_EXAMPLES_PER_ANSWER, OUT_OF_SCOPE, EditRefused, topic_title


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("inbox")
    data = console.data

    @pages.get("/")
    async def home(request: Request):
        return redirect("/inbox")

    @pages.get("/inbox")
    async def inbox_page(request: Request):
        status = request.args.get("status", "new")
        status = status if status in inbox.STATUSES or status == "all" else "new"
        order = "frequent" if request.args.get("order") == "frequent" else "newest"
        groups = await store.run_blocking(inbox.inbox, None if status == "all" else status, order)
        return console.render(request, "inbox.html", groups=groups, status=status, order=order, statuses=inbox.STATUSES)

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
                "label": a.label, "title": a.title, "text": data.fill(a.text, facts),
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

    @pages.get("/inbox/item")
    async def item_page(request: Request):
        context = await store.run_blocking(teach_context, request.args.get("refs", ""))
        return console.render(request, "item.html", **context)

    async def teach_error(request: Request, refs: str, error: str, **form):
        context = await store.run_blocking(teach_context, refs)
        return console.render(request, "item.html", http_status=422, error=error, form=form, **context)

    async def taught(request: Request, refs: str, change, message: str):
        """The inbox items `refs` are answered by `change`: marked taught, logged, and the next step said."""
        await store.run_blocking(inbox.set_status, refs, "taught")
        await record_change(request, change, items=refs)
        console.flash(request, f"{message} Retrain and publish to put it live.")
        return redirect("/inbox")

    @pages.post("/teach/phrasing")
    async def teach_phrasing(request: Request):
        form = request.form
        refs, label, text = form.get("refs", ""), form.get("label", ""), form.get("text", "")
        try:
            change = await store.run_blocking(data.add_phrasing, label, text)
        except EditRefused as error:
            return await teach_error(request, refs, str(error), text=text, label=label)
        return await taught(request, refs, change,
                            f"Taught: “{change.detail['phrasing']}” now belongs to “{topic_title(label)}”.")

    @pages.post("/teach/new-answer")
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
        return await taught(request, refs, change, f"New answer “{topic_title(change.target)}” written to {change.path}.")

    @pages.post("/teach/status")
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
            await record_change(request, change, items=refs)
        await record(actor(request), "set_status", refs, status=status, items=changed)
        labels = {"out_of_scope": "marked out of scope", "dismissed": "dismissed", "new": "put back in the inbox"}
        later = " The assistant will learn to decline it after the next retraining." if change else ""
        console.flash(request, f"{changed} message(s) {labels[status]}.{later}")
        return redirect("/inbox")

    return pages
