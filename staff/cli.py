"""The staff console's steps from the command line, for engineers.

    python -m staff serve                      start the console (make staff)
    python -m staff user add [NAME]            create an account (make staff-user)
    python -m staff user password NAME         set a new password (also unlocks)
    python -m staff user list
    python -m staff inbox [--status new|taught|out_of_scope|dismissed|all] [--order newest|frequent] [--json]
    python -m staff answers [SEARCH]           the answers a phrasing can be added to
    python -m staff add-phrasing LABEL TEXT [--items REFS]
    python -m staff retrain                    train, then run the gate (exit 1 when it blocks)
    python -m staff publish [CANDIDATE]        the newest candidate that passed, by default
    python -m staff rollback
    python -m staff status                     which model is live, and since when

Passwords come from STAFF_PASSWORD or a prompt, never from the command line.
"""

import argparse
import getpass
import json
import os
import sys
from typing import List, Optional

from clinic import store
from staff import audit, auth, inbox
from staff.publishing import PublishFailed, Publisher, find_job
from staff.rasa_api import RasaUnavailable
from staff.registry import ModelRegistry
from staff.settings import Settings, from_environment
from staff.training import Busy, Retrainer
from staff.training_data import EditRefused, TrainingData


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"[:64]


def _password(confirm: bool = True) -> str:
    password = os.environ.get("STAFF_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise SystemExit("Set STAFF_PASSWORD, or run this in a terminal to be asked for the password.")
    password = getpass.getpass("Password (at least 10 characters): ")
    if confirm and getpass.getpass("Same password again: ") != password:
        raise SystemExit("The two passwords differ; nothing changed.")
    return password


def cmd_user(args, settings: Settings) -> int:
    if args.user_command == "list":
        for name in auth.usernames():
            print(name)
        return 0
    name = args.name or os.environ.get("STAFF_USER") or ""
    if not name:
        if not sys.stdin.isatty():
            raise SystemExit("Give the user name (or set STAFF_USER).")
        name = input("User name: ").strip().lower()
    try:
        if args.user_command == "add":
            auth.create_account(name, _password())
            audit.record(cli_actor(), "add_account", name)
            print(f"Account {name!r} created: sign in at http://{settings.host}:{settings.port}/")
        else:
            auth.set_password(name, _password())
            audit.record(cli_actor(), "set_password", name)
            print(f"New password set for {name!r}.")
    except auth.AccountError as error:
        raise SystemExit(f"Not done: {error}.")
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from staff.app import serve

    if args.ensure_user:
        # `make run` with STAFF_PASSWORD: an account to sign in with on first start
        name = os.environ.get("STAFF_USER") or "staff"
        if not auth.account_exists(name):
            try:
                auth.create_account(name, _password(confirm=False))
            except auth.AccountError as error:
                raise SystemExit(f"Cannot create the staff account: {error}.")
            audit.record("make run", "add_account", name)
            print(f"Staff account {name!r} created with STAFF_PASSWORD.", flush=True)
    serve(settings)
    return 0


def cmd_inbox(args, settings: Settings) -> int:
    groups = inbox.inbox(None if args.status == "all" else args.status, args.order)
    if args.json:
        print(json.dumps([group.as_dict() for group in groups], indent=2))
        return 0
    if not groups:
        print("The inbox is empty.")
    for group in groups:
        guesses = ", ".join(f"{p['name']} {p['confidence']:.0%}" for p in group.guesses[:2])
        kinds = "/".join(inbox.KIND_LABELS.get(k, k) for k in group.kinds)
        print(f"{group.count:>3}x  {group.last_at:%Y-%m-%d %H:%M}  {group.text!r}  [{kinds}]  {guesses}")
        print(f"      items: {group.refs}")
    return 0


def cmd_answers(args, settings: Settings) -> int:
    data = TrainingData(settings.project_dir)
    words = (args.search or "").lower().split()
    for answer in data.answers():
        text = data.fill(answer.text)
        if all(word in (answer.label + " " + text).lower() for word in words):
            print(f"{answer.label}  ({len(answer.examples)} phrasings)\n    {text[:160]}")
    return 0


def cmd_add_phrasing(args, settings: Settings) -> int:
    data = TrainingData(settings.project_dir)
    try:
        change = data.add_phrasing(args.label, args.text)
    except EditRefused as error:
        print(f"Not added: {error}", file=sys.stderr)
        return 1
    if args.items:
        inbox.set_status(args.items, "taught")
    audit.record_change(cli_actor(), change, items=args.items)
    print(change.diff, end="")
    return 0


def cmd_retrain(args, settings: Settings) -> int:
    retrainer = Retrainer(settings)
    try:
        job = retrainer.prepare(cli_actor(), ModelRegistry(settings).protected_candidates())
    except Busy as error:
        print(f"Not started: {error}", file=sys.stderr)
        return 2
    audit.record(cli_actor(), "retrain", job.id)
    print(f"Candidate {job.id}: training (the log follows)", flush=True)
    retrainer.run(job, echo=(lambda line: print(line, flush=True)) if args.verbose else None)
    print()
    for check in job.checks:
        mark = "passed" if check["passed"] else "FAILED"
        print(f"{check['title']:<22} {mark:<7} {check['summary']}")
        if not check["passed"]:
            for detail in check["details"][:10]:
                print(f"    {detail}")
    print(f"\n{job.stage} ({job.seconds.get('total', 0):.0f} s): candidate {job.id}")
    if job.error:
        print(job.error, file=sys.stderr)
    return {"passed": 0, "blocked": 1}.get(job.status, 2)


def cmd_publish(args, settings: Settings) -> int:
    publisher = Publisher(settings)
    try:
        job = find_job(settings, args.candidate)
        published = publisher.publish(job, cli_actor())
    except (PublishFailed, RasaUnavailable) as error:
        audit.record(cli_actor(), "publish_failed", args.candidate, reason=str(error))
        print(f"Not published: {error}", file=sys.stderr)
        return 1
    print(f"Published {published.candidate} on {', '.join(settings.rasa_urls)}.")
    return 0


def cmd_rollback(args, settings: Settings) -> int:
    try:
        published = Publisher(settings).rollback(cli_actor())
    except (PublishFailed, RasaUnavailable) as error:
        print(f"Not rolled back: {error}", file=sys.stderr)
        return 1
    print(f"Rolled back to {published.candidate}.")
    return 0


def cmd_status(args, settings: Settings) -> int:
    publisher = Publisher(settings)
    live = publisher.registry.live()
    if live:
        print(f"Live: {live.candidate} ({live.kind} by {live.published_by}, {live.published_at:%Y-%m-%d %H:%M} UTC)")
    else:
        print("Live: the model the servers were started with (nothing published yet)")
    previous = publisher.registry.previous()
    if previous:
        print(f"Rollback would go to: {previous.candidate}")
    for url, state in publisher.server_states().items():
        running = state.get("error") or f"runs {state.get('candidate') or state.get('model_file')} (model id {state.get('model_id')})"
        print(f"  {url}: {running}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m staff", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the staff console")
    serve.add_argument("--ensure-user", action="store_true",
                       help="create STAFF_USER (default 'staff') with STAFF_PASSWORD if missing")
    user = commands.add_parser("user", help="staff accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    for name in ("add", "password"):
        command = user_commands.add_parser(name)
        command.add_argument("name", nargs="?")
    user_commands.add_parser("list")
    box = commands.add_parser("inbox", help="what the assistant could not answer")
    box.add_argument("--status", default="new", choices=[*inbox.STATUSES, "all"])
    box.add_argument("--order", default="newest", choices=["newest", "frequent"])
    box.add_argument("--json", action="store_true")
    answers = commands.add_parser("answers", help="the answers, to pick a LABEL")
    answers.add_argument("search", nargs="?")
    add = commands.add_parser("add-phrasing", help="teach a phrasing of an existing answer")
    add.add_argument("label", help="e.g. faq/how_many_sessions or not_covered/prices")
    add.add_argument("text")
    add.add_argument("--items", help="inbox items it answers, as listed by `inbox` (marked taught)")
    retrain = commands.add_parser("retrain", help="train a candidate and run the gate")
    retrain.add_argument("--verbose", "-v", action="store_true", help="print the training log")
    publish = commands.add_parser("publish", help="put a candidate that passed the gate live")
    publish.add_argument("candidate", nargs="?")
    commands.add_parser("rollback", help="put the previous model back live")
    commands.add_parser("status", help="which model is live")
    return root


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    settings = from_environment()
    store.engine()
    handlers = {
        "serve": cmd_serve, "user": cmd_user, "inbox": cmd_inbox, "answers": cmd_answers,
        "add-phrasing": cmd_add_phrasing, "retrain": cmd_retrain, "publish": cmd_publish,
        "rollback": cmd_rollback, "status": cmd_status,
    }
    return handlers[args.command](args, settings)
