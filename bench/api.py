"""The HTTP API of a real ``hora serve`` subprocess on 127.0.0.1 (fresh database per run):
requests/s and p50/p99 latency of ``POST /v1/jobs`` and ``GET /v1/jobs/{id}`` with 1 and 8
concurrent clients (threads, each with its own keep-alive ``httpx.Client``), and the lateness
(arrival - due, ms) of HTTP targets at a local receiver. Prints one JSON line: medians of
--runs plus every run; non-2xx answers and transport errors are counted, never dropped."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from _common import fresh_database, median, parser
from hora.testing import ServeProcess, serve_process

ADMIN_KEY = "hora_" + "B" * 32
STARTUP_DEADLINE = 60.0
CLIENTS = (1, 8)
CLIENT_KIND = ("threads: N OS threads in this process, each with its own keep-alive "
               "httpx.Client, each sending its next request when the previous one answered")


# -- the server --------------------------------------------------------------------------------


Server = ServeProcess


def cpu_seconds(server: Server) -> float | None:
    """user + system CPU of the server process so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(database_url: str, cwd: str) -> Server:
    """``hora serve --port 0``, as the API tests start it (``hora.testing``)."""
    return serve_process(database_url, cwd, admin_key=ADMIN_KEY,
                         startup_timeout=STARTUP_DEADLINE)


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN_KEY}"})


# -- load ------------------------------------------------------------------------------------


Request = Callable[[httpx.Client, int], httpx.Response]


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99), interpolated within the data (never past its max)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def load(server: Server, request: Request, clients: int, total: int, warmup: int,
         ) -> dict[str, Any]:
    """``total`` requests from ``clients`` threads after ``warmup`` each; request(c, i) sends
    the i-th. Returns req/s over the timed part, latency percentiles, errors, CPU seconds."""
    counter = itertools.count()
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[Counter[str]] = [Counter() for _ in range(clients)]
    out: list[list[httpx.Response]] = [[] for _ in range(clients)]

    def send(c: httpx.Client, i: int, k: int, timed: bool) -> None:
        t0 = time.perf_counter()
        try:
            r = request(c, i)
        except httpx.HTTPError as e:
            errors[k][type(e).__name__] += 1
            return
        dt = time.perf_counter() - t0
        if not 200 <= r.status_code < 300:
            errors[k][str(r.status_code)] += 1
        if timed:
            latencies[k].append(dt)
            out[k].append(r)

    def run(k: int) -> None:
        try:
            with client(server) as c:
                for w in range(warmup):
                    send(c, -1 - (k * warmup + w), k, timed=False)
                barrier.wait()
                while (i := next(counter)) < total:
                    send(c, i, k, timed=True)
                barrier.wait()
        except BaseException:
            barrier.abort()  # the main thread's wait raises instead of hanging
            raise

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()  # everyone warmed up and connected
    cpu_server, cpu_bench, t0 = cpu_seconds(server), time.process_time(), time.perf_counter()
    barrier.wait()  # everyone done
    wall = time.perf_counter() - t0
    cpu_server_end, cpu_bench_end = cpu_seconds(server), time.process_time()
    for t in threads:
        t.join()
    lat = [x for per in latencies for x in per]
    err: Counter[str] = sum(errors, Counter())
    return {
        "req_per_s": total / wall, "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000, "errors": dict(err), "wall_s": wall,
        "server_cpu_s": (None if cpu_server is None or cpu_server_end is None
                         else cpu_server_end - cpu_server),
        "bench_cpu_s": cpu_bench_end - cpu_bench,
        "responses": [r for per in out for r in per],
    }


def post_job(c: httpx.Client, i: int) -> httpx.Response:
    return c.post("/v1/jobs", json={"task": "bench.noop", "payload": {"n": i}, "delay": 3600})


# -- HTTP targets ------------------------------------------------------------------------------


class Receiver:
    """A webhook receiver in a thread that records each request's wall-clock arrival: when
    its headers were in, and when its body was read too (the arrival lateness counts)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[datetime, datetime, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # the reply's two writes must not wait for an ACK

            def do_POST(self) -> None:
                headers_in = datetime.now(UTC)
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                arrived = datetime.now(UTC)
                with receiver._lock:
                    receiver.arrivals.append((headers_in, arrived, body))
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def lateness(server: Server, targets: int, spread: float, lead: float,
             clients: int = 8) -> dict[str, Any]:
    """``targets`` HTTP-target jobs due at distinct instants over ``spread`` s, the first
    ``lead`` s after the enqueue starts (8 clients enqueue them in due order); lateness =
    arrival at the receiver (request fully read) - the due_at the server answered."""
    receiver = Receiver()
    try:
        base = datetime.now(UTC) + timedelta(seconds=lead)
        step = spread / targets
        due_sent = [base + timedelta(seconds=i * step) for i in range(targets)]
        due: dict[int, datetime] = {}
        leads: list[float] = []
        lock = threading.Lock()

        def request(c: httpx.Client, i: int) -> httpx.Response:
            if i < 0:  # warm-up: a no-op job, not a target
                return post_job(c, i)
            ahead = (due_sent[i] - datetime.now(UTC)).total_seconds()
            r = c.post("/v1/jobs", json={"target": {"url": receiver.url, "body": {"i": i}},
                                         "at": due_sent[i].isoformat()})
            if r.status_code == 201:
                with lock:
                    leads.append(ahead)
                    due[i] = datetime.fromisoformat(r.json()["due_at"])
            return r

        enq = load(server, request, clients, targets, warmup=2)
        deadline = time.monotonic() + lead + spread + 60
        while receiver.count() < len(due) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a late duplicate, if any, is counted too
        with receiver._lock:
            arrivals = list(receiver.arrivals)
    finally:
        receiver.close()
    late_ms: list[float] = []
    body_gap_ms: list[float] = []
    seen: Counter[int] = Counter()
    for headers_in, arrived, body in arrivals:
        i = json.loads(body)["i"]
        seen[i] += 1
        if seen[i] == 1 and i in due:
            late_ms.append((arrived - due[i]).total_seconds() * 1000)
            body_gap_ms.append((arrived - headers_in).total_seconds() * 1000)
    return {
        "p50_ms": statistics.median(late_ms) if late_ms else float("nan"),
        "p99_ms": percentile(late_ms, 99),
        "max_ms": max(late_ms, default=float("nan")),
        "early": sum(1 for x in late_ms if x < 0),
        "arrived": len(late_ms), "missing": len(due) - len(late_ms),
        "duplicates": sum(n - 1 for n in seen.values()),
        "enqueue_errors": enq["errors"], "min_lead_s": min(leads, default=float("nan")),
        "max_headers_to_body_ms": max(body_gap_ms, default=float("nan")),
    }


# -- one run -----------------------------------------------------------------------------------


def one_run(url: str, requests: dict[int, int], warmup: int, targets: int, spread: float,
            lead: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cwd:
        server = start_server(url, cwd)
        try:
            result: dict[str, Any] = {}
            ids: list[str] = []
            for n in CLIENTS:
                r = load(server, post_job, n, requests[n], warmup)
                ids += [x.json()["id"] for x in r.pop("responses") if x.status_code == 201]
                result[f"post_c{n}"] = r
            if not ids:
                raise RuntimeError("no job was created; cannot measure GET:\n"
                                   + "".join(server.log[-20:]))

            def get_job(c: httpx.Client, i: int) -> httpx.Response:
                return c.get(f"/v1/jobs/{ids[i % len(ids)]}")

            for n in CLIENTS:
                r = load(server, get_job, n, requests[n], warmup)
                r.pop("responses")
                result[f"get_c{n}"] = r
            result["lateness"] = lateness(server, targets, spread, lead)
        finally:
            code = server.stop()
        result["server_exit_code"] = code
        result["server_log_problems"] = [
            line.rstrip() for line in server.log
            if any(w in line for w in ("ERROR", "CRITICAL", "Traceback", "WARNING"))][:20]
        return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def errors(key: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for r in runs:
            total.update(r[key]["errors"] if "errors" in r[key] else r[key]["enqueue_errors"])
        return dict(total)

    out: dict[str, Any] = {}
    for kind in ("post", "get"):
        for n in CLIENTS:
            key = f"{kind}_c{n}"
            out[key] = {m: median([r[key][m] for r in runs])
                        for m in ("req_per_s", "p50_ms", "p99_ms")}
            out[key]["errors_all_runs"] = errors(key)
    lat = [r["lateness"] for r in runs]
    out["http_target_lateness"] = {
        **{m: median([x[m] for x in lat]) for m in ("p50_ms", "p99_ms", "max_ms")},
        "early_all_runs": sum(x["early"] for x in lat),
        "missing_all_runs": sum(x["missing"] for x in lat),
        "duplicates_all_runs": sum(x["duplicates"] for x in lat),
        "enqueue_errors_all_runs": errors("lateness"),
        "min_lead_s": round(min(x["min_lead_s"] for x in lat), 2),
        "max_headers_to_body_ms": round(max(x["max_headers_to_body_ms"] for x in lat), 2),
    }
    return out


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--requests", type=int, default=2000,
                   help="timed requests with 1 client (8 clients send twice as many)")
    p.add_argument("--warmup", type=int, default=50, help="untimed requests per client")
    p.add_argument("--targets", type=int, default=500, help="HTTP-target jobs")
    p.add_argument("--spread", type=float, default=10.0, help="seconds the due times span")
    p.add_argument("--lead", type=float, default=3.0,
                   help="seconds from the start of the enqueue to the first due time")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 100 requests, 50 targets over 2 s, 1 run")
    args = p.parse_args()
    if args.quick:
        args.requests, args.warmup, args.targets, args.spread, args.lead, args.runs = (
            100, 5, 50, 2.0, 2.5, 1)
    requests = {1: args.requests, 8: 2 * args.requests}
    load_before = os.getloadavg()
    runs = []
    for _ in range(args.runs):
        with fresh_database(args.store, args.postgres_url) as url:
            runs.append(one_run(url, requests, args.warmup, args.targets, args.spread,
                                args.lead))
    print(json.dumps(rounded({
        "bench": "api", "store": args.store, "runs": args.runs, "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "note": (f"{os.cpu_count()} cores shared by the hora serve process (API, "
                     "scheduler and worker in one process), this load generator, the "
                     "receiver" + (", PostgreSQL" if args.store == "postgres" else "")
                     + " and whatever else runs on the machine"),
            "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg()),
            "python": platform.python_version(), "platform": platform.platform(),
        },
        "clients": CLIENT_KIND,
        "requests": {f"c{n}": k for n, k in requests.items()}, "warmup_per_client": args.warmup,
        "post_body": {"task": "bench.noop", "payload": {"n": "i"}, "delay": 3600},
        "targets": args.targets, "spread_s": args.spread, "lead_s": args.lead,
        **summarize(runs),
        "all_runs": runs,
    })))


if __name__ == "__main__":
    main()
