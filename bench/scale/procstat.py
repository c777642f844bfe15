"""What the kernel knows about a process (RSS, CPU time) and about the machine."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...), 0 when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all threads) in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def machine() -> dict[str, str | int | float]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mem = re.search(r"^MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text(), re.M)
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model.group(1).strip() if model else "unknown",
        "memory_gib": round(int(mem.group(1)) / 2**20, 1) if mem else 0,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
