"""The benchmark's chart: latency percentiles and throughput against concurrent conversations, one line per assistant, as a PNG."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display here, only the file
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"project": "#1f77b4", "stock": "#7f7f7f", "scaled": "#2ca02c"}
LABELS = {"project": "project", "stock": "stock Rasa", "scaled": "project, scaled (2 servers)"}
PERCENTILES = (("p50", "-"), ("p95", "--"), ("p99", ":"))


def draw(results: dict, path: Path) -> Path:
    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in ("stock", "project", "scaled"):
        steps = results[name].get("load") or []
        if not steps:
            continue
        levels = [step["concurrency"] for step in steps]
        for key, style in PERCENTILES:
            latency.plot(
                levels, [1000 * step[key] for step in steps], style, marker="o",
                color=COLOURS[name], label=f"{LABELS[name]} {key}",
            )
        throughput.plot(
            levels, [step["messages_per_second"] for step in steps], "-", marker="o",
            color=COLOURS[name], label=LABELS[name],
        )
        one = results[name].get("single_server")
        if one:  # the same servers with all traffic to one of them
            throughput.plot(
                [one["concurrency"]], [one["messages_per_second"]], "x", markersize=9,
                color=COLOURS[name], label="project, scaled, all to one server",
            )
    for axes in (latency, throughput):
        axes.set_xscale("log", base=2)
        axes.set_xticks(results["concurrency"])
        axes.set_xticklabels([str(level) for level in results["concurrency"]])
        axes.set_xlabel("conversations at once")
        axes.grid(True, alpha=0.3)
    latency.set_yscale("log")
    latency.set_ylabel("latency per message (ms, log scale)")
    latency.set_title("Latency: p50 solid, p95 dashed, p99 dotted")
    latency.legend(fontsize=7, ncol=3)
    throughput.set_ylabel("answered messages per second")
    throughput.set_title("Throughput")
    throughput.set_ylim(bottom=0)
    throughput.legend(fontsize=8)
    note = "smoke run: figures mean nothing" if results["mode"] == "smoke" else results["started_at"]
    figure.suptitle(f"Clinic assistant vs stock Rasa, same data ({note})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
