"""The benchmark's targets: for each, the figure measured and whether it was met, missed (by how much) or not run."""

from typing import List, Tuple

from bench.accuracy import accuracy_verdict
from bench.figures import MB, SET_TITLES, errors, is_number, load_step, ms, pct, seconds
from clinic import quality


def _verdict(ok: bool, miss: str) -> str:
    return "met" if ok else f"missed by {miss}"


def targets(results: dict) -> List[Tuple[str, str, str]]:
    """(target, measured, met / missed by / not run) for each target of the issue."""
    project, stock, training, scaled = results["project"], results["stock"], results["training"], results["scaled"]
    top = max(results["concurrency"])
    found = []
    for name, title in SET_TITLES.items():
        score = project["accuracy"][name]
        found.append((
            f"{title}: at least {pct(quality.ACCURACY_TARGETS[name])} right, every emergency to 911, no false 911",
            f"{pct(score['accuracy'])} (stock {pct(stock['accuracy'][name]['accuracy'])}), red-flag recall "
            f"{pct(score['red_flag_recall'])}, {score['false_alarms']} false 911",
            accuracy_verdict(name, score),
        ))
    oos = project["accuracy"]["written"]["out_of_scope_precision"]
    found.append(("out-of-scope precision at least 95%", pct(oos), _verdict(oos >= 0.95, f"{100 * (0.95 - oos):.1f} points")))
    p95, s95 = load_step(project, 1)["p95"], load_step(stock, 1)["p95"]
    times = p95 / s95 if is_number(p95) and is_number(s95) and s95 else float("inf")
    found.append((
        "p95 latency at 1 conversation within 1.5x stock",
        f"{times:.2f}x ({ms(p95)} ms vs {ms(s95)} ms)", _verdict(times <= 1.5, f"{times - 1.5:.2f}x"),
    ))
    at_top = [("project", load_step(project, top))]
    if "not_run" not in scaled:
        at_top.append((f"scaled, {scaled['replicas']} servers", load_step(scaled, top)))
    failed = sum(step["errors"] for _, step in at_top)
    found.append((
        f"no errors at {top} concurrent conversations",
        "; ".join(f"{name}: {errors(step)}" for name, step in at_top),
        _verdict(failed == 0, f"{failed} errors"),
    ))
    if "not_run" in scaled:
        found.append((f"{2} replicas give at least 1.6x one server's throughput", "—", f"not run: {scaled['not_run']}"))
    else:
        both, one = load_step(scaled, top)["messages_per_second"], scaled["single_server"]["messages_per_second"]
        gain = both / one if one else float("inf")
        found.append((
            f"{scaled['replicas']} replicas give at least 1.6x one server's throughput",
            f"{gain:.2f}x at {top} at once ({both:.1f} vs {one:.1f} msg/s, same servers)",
            _verdict(gain >= 1.6, f"{1.6 - gain:.2f}x"),
        ))
    flood = project["flood"]
    alone, flooded = flood["alone"]["p95"], flood["flooded"]["p95"]
    slower = flooded / alone if is_number(alone) and is_number(flooded) and alone else float("inf")
    others_failed = flood["flooded"]["errors"]
    found.append((
        "other visitors' p95 while one conversation floods within 1.5x of without, no errors",
        f"{slower:.2f}x ({ms(flooded)} ms vs {ms(alone)} ms), {others_failed} errors",
        _verdict(slower <= 1.5 and others_failed == 0, "; ".join(
            ([f"{slower - 1.5:.2f}x"] if slower > 1.5 else []) + ([f"{others_failed} errors"] if others_failed else [])
        )),
    ))
    long = results["long_conversations"]
    (first, first_p95), *_, (last, last_p95) = long["p95"].items()
    grown = last_p95 / first_p95 if is_number(first_p95) and is_number(last_p95) and first_p95 else float("inf")
    lost = long["conversations"] - long["kept"]
    found.append((
        "long conversations: the last turns' p95 at most 1.5x the first ten's, every message kept",
        f"{grown:.2f}x (turns {last}: {ms(last_p95)} ms, turns {first}: {ms(first_p95)} ms); "
        f"{long['kept']} of {long['conversations']} kept, {long['errors']} errors",
        _verdict(grown <= 1.5 and lost == 0 and long["errors"] == 0, "; ".join(
            ([f"{grown - 1.5:.2f}x"] if grown > 1.5 else []) + ([f"{lost} conversations lost messages"] if lost else [])
            + ([f"{long['errors']} errors"] if long["errors"] else [])
        )),
    ))
    publishing = results["publishing"]
    growth, count = publishing["growth_after_first"], len(publishing["after_each_publish"])
    found.append((
        f"memory over {count} publishes under load: at most +10% from the first to the last",
        f"{100 * growth:+.1f}% ({publishing['after_each_publish'][0] / MB:.0f} -> "
        f"{publishing['after_each_publish'][-1] / MB:.0f} MB; {publishing['before'] / MB:.0f} MB before the first)",
        _verdict(growth <= 0.10, f"{100 * (growth - 0.10):.1f} points"),
    ))
    rasa_memory = max(project["memory"]["rasa"] + ([] if "not_run" in scaled else scaled["memory"]["rasa"]))
    found.append((
        "Rasa server memory under 1.2 GB", f"{rasa_memory / 1024 ** 3:.2f} GB (largest server)",
        _verdict(rasa_memory < 1.2 * 1024 ** 3, f"{(rasa_memory - 1.2 * 1024 ** 3) / MB:.0f} MB"),
    ))
    start = project["start_seconds"]
    found.append(("start to first answer under 30 s", seconds(start), _verdict(start < 30, f"{start - 30:.1f} s")))
    retrain = training["project_total_seconds"]
    found.append((
        "full retrain under 3 minutes on 2 cores",
        f"{seconds(retrain)} (spaCy pipeline + rasa train, {results['machine']['cpus']} cores)",
        _verdict(retrain < 180, f"{retrain - 180:.0f} s"),
    ))
    return found


def missed(results: dict) -> List[str]:
    """"target: result (measured)" for each target not met, to print at the end of a run."""
    return [f"{target}: {result} ({measured})" for target, measured, result in targets(results) if result != "met"]
