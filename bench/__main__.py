"""Runs the benchmark (`make bench`): trains stock Rasa and the project, serves each in turn under the same load, and writes the report.

    python -m bench [--retrain] [--profile] [--step-seconds S] [--out DIR]
    python -m bench --smoke [--scaled]     (what `make test` runs)

Besides the load steps: one conversation flooding while others talk
(bench/flood.py), long conversations on the project started again
(bench/long_conversation.py), and its memory over ten publishes under load
(bench/publishing.py).

Writes DIR/latest.md (the tables, also printed), DIR/latest.png (the chart)
and DIR/latest.json (every figure), DIR being bench/results by default.
Traffic goes to 127.0.0.1 only.
"""

import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench import RESULTS, ROOT
from bench.chart import draw
from bench.load import question_script
from bench.measure import measure, measure_long_conversations, measure_publishing, measure_scaled
from bench.profile import available as profiling_unavailable
from bench.progress import elapsed, say
from bench.servers import Served
from bench.stock import write_stock_project
from bench.report import render
from bench.targets import missed
from bench.training import CACHE, train_both

CONCURRENCY = [1, 8, 32]
# A smoke run trains on every SMOKE_SAMPLE-th example of each intent.
SMOKE_SAMPLE = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check that it works: 1 training epoch on a fifth of the examples, short steps")
    parser.add_argument("--retrain", action="store_true", help="train again even when the inputs did not change")
    parser.add_argument("--step-seconds", type=float, help="length of each load step (20 s; smoke 2.5 s)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=CONCURRENCY)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "clinic.tar.gz")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scaled", action="store_true", help="include the scaled profile in a smoke run too")
    parser.add_argument("--profile", action="store_true",
                        help="sample each Rasa server with py-spy while it starts and under load (OUT/profiles/)")
    args = parser.parse_args()
    if args.profile and profiling_unavailable():
        sys.exit(f"Cannot profile: {profiling_unavailable()}")
    args.step_seconds = args.step_seconds or (2.5 if args.smoke else 20.0)
    args.warm_up = 3 if args.smoke else 10
    args.model = args.model.resolve()
    args.out = args.out.resolve()
    if not args.model.exists():
        sys.exit(f"No model at {args.model}: run `make train` (or `make bench`, which trains it).")
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    for old in [*(args.out / "logs").glob("*.log"), *(args.out / "profiles").glob("*.txt")]:
        old.unlink()

    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_start = os.getloadavg()[0]
    say(
        f"Benchmark ({'smoke' if args.smoke else 'full'}): training, then stock Rasa, the project and the "
        f"scaled profile, each under {len(args.concurrency)} load steps of {args.step_seconds:g} s"
    )
    questions = question_script()
    with tempfile.TemporaryDirectory(prefix="clinic-bench-") as temporary:
        workdir = Path(temporary)
        # the smoke run always trains (quickly, both at once) and never touches the kept models
        training = train_both(
            workdir / "training", args.out / "logs", epochs=1 if args.smoke else 0,
            retrain=args.retrain, cache=None if args.smoke else CACHE, parallel=args.smoke,
            sample=SMOKE_SAMPLE if args.smoke else 0,
        )
        stock_files = write_stock_project(workdir / "stock-serving")
        stock = measure(
            Served(
                "stock Rasa", Path(training.stock_model), workdir / "var-stock", args.out / "logs" / "stock.log",
                endpoints=stock_files["endpoints"], credentials=stock_files["credentials"],
            ),
            "stock Rasa", questions, args, workdir,
        )
        project = measure(
            Served("project", args.model, workdir / "var-project", args.out / "logs" / "project.log"),
            "project", questions, args, workdir, flood=True,
        )
        long_conversations = project.pop("long_conversations", None) or measure_long_conversations(args, workdir)
        publishing = project.pop("publishing", None) or measure_publishing(args, workdir, questions)
        scaled = measure_scaled(workdir, questions, args)

    results = {
        "mode": "smoke" if args.smoke else "full",
        "started_at": started_at,
        "duration_seconds": elapsed(),
        "machine": {"cpus": os.cpu_count(), "load_average_start": load_start, "load_average_end": os.getloadavg()[0]},
        "step_seconds": args.step_seconds,
        "concurrency": args.concurrency,
        "training": {**asdict(training), "project_total_seconds": training.project_total_seconds},
        "stock": stock,
        "project": project,
        "long_conversations": long_conversations,
        "publishing": publishing,
        "scaled": scaled,
        "chart": str((args.out / "latest.png").relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out / "latest.png"),
    }
    draw(results, args.out / "latest.png")
    report = render(results)
    (args.out / "latest.md").write_text(report)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print()
    print(report)
    say(f"Wrote {args.out / 'latest.md'} and {args.out / 'latest.png'} in {elapsed() / 60:.1f} min")
    for line in missed(results):
        say(f"Target not met (or not run): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
