"""Resident memory and CPU time of the assistant's processes (each Rasa server
and the action server, with their children) and how busy the machine is,
read from /proc.
"""

import os
from pathlib import Path
from typing import Dict, List, Tuple

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _parent(pid: int) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ...", and comm may hold spaces
    stat = (PROC / str(pid) / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> List[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if _parent(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
    return found


def descendants(pid: int) -> List[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children(current))
    return found


def rss_bytes(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_tree_rss(pid: int) -> int:
    return sum(rss_bytes(p) for p in descendants(pid))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its children so far."""
    total = 0
    for process in descendants(pid):
        try:
            fields = (PROC / str(process) / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / CLOCK_TICKS


def machine_cpu() -> Tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot."""
    ticks = [int(value) for value in (PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def _command_line(pid: int) -> List[str]:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def serve_children(serve_pid: int) -> Dict[str, List[int]]:
    """scripts/serve.py's Rasa servers (`rasa run`) and action server (`-m actions`)."""
    kinds: Dict[str, List[int]] = {"rasa": [], "actions": []}
    for pid in sorted(children(serve_pid)):
        command = _command_line(pid)
        if "run" in command and any(part.endswith("/rasa") for part in command):
            kinds["rasa"].append(pid)
        elif "actions" in command and "-m" in command:
            kinds["actions"].append(pid)
    return kinds
