"""Retraining, publishing and rolling back: the model page and its forms.

    GET  /model                    what is live, the candidates, the history, each server
    POST /retrain                  starts a retraining; GET /retrain/<id> follows it
    GET  /retrain/<id>/state       its progress as JSON (static/console.js polls it)
    POST /publish, POST /rollback
"""

from typing import Dict

from sanic import Blueprint, response
from sanic.exceptions import NotFound
from sanic.request import Request

from clinic import store
from staff.pages.console import Console, actor, record, redirect
from staff.publishing import PublishFailed
from staff.rasa_api import RasaUnavailable
from staff.training import Busy


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("model_page")
    retrainer, publisher, registry = console.retrainer, console.publisher, console.registry

    def model_context() -> Dict:
        jobs = retrainer.jobs()[:8]
        live = registry.live()
        return {
            "jobs": jobs, "current": retrainer.current(), "live": live,
            "previous": registry.previous(), "history": registry.history(10),
            "servers": publisher.server_states(),
        }

    @pages.get("/model")
    async def model_page(request: Request):
        context = await store.run_blocking(model_context)
        return console.render(request, "model.html", **context)

    @pages.post("/retrain")
    async def retrain(request: Request):
        protected = await store.run_blocking(registry.protected_candidates)
        try:
            job = await store.run_blocking(retrainer.start, actor(request), protected)
        except Busy as error:
            console.flash(request, f"Not started: {error}.")
            return redirect("/model")
        await record(actor(request), "retrain", job.id)
        return redirect(f"/retrain/{job.id}")

    @pages.get("/retrain/<job_id>/state")
    async def job_state(request: Request, job_id: str):
        job = retrainer.job(job_id)
        if job is None:
            return response.json({"error": "no such retraining"}, status=404)
        try:
            since = max(0, int(request.args.get("since", "0")))
        except ValueError:
            since = 0
        return response.json(job.state(since))

    @pages.get("/retrain/<job_id>")
    async def job_page(request: Request, job_id: str):
        job = retrainer.job(job_id)
        if job is None:
            raise NotFound("no such retraining")
        live = await store.run_blocking(registry.live)
        return console.render(request, "job.html", job=job, live=live)

    @pages.post("/publish")
    async def publish(request: Request):
        job = retrainer.job(request.form.get("job", ""))
        if job is None:
            raise NotFound("no such retraining")
        try:
            await store.run_blocking(publisher.publish, job, actor(request))
        except (PublishFailed, RasaUnavailable) as error:
            await record(actor(request), "publish_failed", job.id, reason=str(error))
            console.flash(request, f"Not published: {error}")
            return redirect(f"/retrain/{job.id}")
        console.flash(request, "Published: the assistant now answers with the new model.")
        return redirect("/model")

    @pages.post("/rollback")
    async def rollback(request: Request):
        try:
            published = await store.run_blocking(publisher.rollback, actor(request))
            console.flash(request, f"Rolled back to {published.candidate}.")
        except (PublishFailed, RasaUnavailable) as error:
            await record(actor(request), "rollback_failed", reason=str(error))
            console.flash(request, f"Not rolled back: {error}")
        return redirect("/model")

    return pages
