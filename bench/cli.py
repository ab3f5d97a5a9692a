"""Wall time of the ``hora`` command where a person feels it: ``hora --help``,
``hora jobs list`` on a fresh SQLite database, and a bare ``python -c 'import hora'``.

Each is a new process (the console script next to this Python, as a shell would run it);
prints one JSON line with the median and every run, in milliseconds. Machines differ, so
this is a benchmark and not a test; issue #10 asks for ``hora --help`` <= 300 ms."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def hora_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m hora.cli``."""
    script = Path(sys.executable).with_name("hora")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hora.cli"]


def run_ms(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one run; CPU (user + system) is the steadier figure on a
    busy machine, wall time is what a person waits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def measure(argv: list[str], runs: int, env: dict[str, str]) -> dict[str, object]:
    run_ms(argv, env)  # warm the file cache and the .pyc files; not counted
    walls, cpus = zip(*(run_ms(argv, env) for _ in range(runs)), strict=True)
    return {"median_ms": round(statistics.median(walls), 1),
            "cpu_median_ms": round(statistics.median(cpus), 1),
            "runs_ms": [round(t, 1) for t in walls]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5, help="runs per command; the median is kept")
    args = p.parse_args()
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("HORA_DATABASE_URL", None)
    hora = hora_command()
    out: dict[str, object] = {"bench": "cli", "runs": args.runs,
                              "python": platform.python_version(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as d:
        url = f"sqlite:///{os.path.join(d, 'bench.db')}"
        subprocess.run([*hora, "migrate", "--database-url", url], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        cases = {
            "python_c_pass": [sys.executable, "-c", "pass"],
            "import_hora": [sys.executable, "-c", "import hora"],
            "hora_help": [*hora, "--help"],
            "hora_jobs_list": [*hora, "jobs", "list", "--database-url", url],
        }
        for name, argv in cases.items():
            out[name] = measure(argv, args.runs, env)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
