"""The answers and editing one: GET /answers, GET and POST /answers/edit."""

import json

from sanic import Blueprint
from sanic.exceptions import NotFound
from sanic.request import Request

from clinic import store
from staff.pages.console import Console, record_change, redirect
from staff.training_data import EditRefused, topic_title


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("answers")
    data = console.data

    @pages.get("/answers")
    async def answers_page(request: Request):
        facts = await store.run_blocking(data.facts)
        answers = await store.run_blocking(data.answers)
        return console.render(request, "answers.html", answers=answers, fill=lambda text: data.fill(text, facts))

    @pages.get("/answers/edit")
    async def answer_edit_page(request: Request):
        try:
            answer = await store.run_blocking(data.answer, request.args.get("label", ""))
        except EditRefused:
            raise NotFound("no such answer")
        facts = await store.run_blocking(data.facts)
        return console.render(request, "answer_edit.html", answer=answer, facts_json=json.dumps(facts))

    @pages.post("/answers/edit")
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
            return console.render(request, "answer_edit.html", http_status=422, answer=answer,
                                  facts_json=json.dumps(facts), error=str(error), text=form.get("text", ""))
        await record_change(request, change)
        console.flash(request, f"Answer “{topic_title(label)}” changed. Retrain and publish to put it live.")
        return redirect("/answers")

    return pages
