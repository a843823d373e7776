"""Load on `gavel serve`: concurrent clients against one server, beside `Judge.judge` on the same records.

16 clients (asyncio + httpx) each send 25 requests of 1-4 short records, one after another, to a
`gavel serve --mode verdict` started by this script on loopback. Checked: every request is answered exactly
once and none with a 5xx. Printed: the server's records/s against `Judge.judge` on the same records (one
list, in this process, once before the server starts and once after it stops: the mean of the two is the
baseline, so a load that drifts during the run weighs on both sides alike), and the requests' p50/p99 latency.
Both sides run llama.cpp with the same thread count (`--threads`, 1 by default: the clients need a core).

    python benchmarks/serve_load.py --out docs/serve_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gavel.backends.threads import THREADS_ENV

SUBJECTS = ["the capital of France", "2 + 3", "a haiku about rain", "the boiling point of water",
            "a synonym for quick", "the largest planet", "the square root of 81", "a greeting in Spanish"]
ANSWERS = ["Paris.", "5", "Rain falls soft / on quiet roofs / the day sleeps", "100 °C at sea level.",
           "Fast.", "Jupiter.", "9", "Hola.", "I don't know.", "Berlin.", "42"]


def make_requests(clients: int, per_client: int, seed: int) -> list[list[list[dict]]]:
    """For each client, its requests; each request 1-4 short records of the three tasks."""
    rng = random.Random(seed)
    plan, n = [], 0
    for _ in range(clients):
        requests = []
        for _ in range(per_client):
            batch = []
            for _ in range(rng.randint(1, 4)):
                n += 1
                subject = rng.choice(SUBJECTS)
                task = rng.choice(["absolute", "classification", "pairwise"])
                record = {"id": str(n), "task": task, "instruction": f"Give {subject}."}
                if task == "pairwise":
                    record |= {"response_a": rng.choice(ANSWERS), "response_b": rng.choice(ANSWERS)}
                else:
                    record["response"] = rng.choice(ANSWERS)
                batch.append(record)
            requests.append(batch)
        plan.append(requests)
    return plan


def run_judge(records: list[dict], batch: int) -> float:
    """Seconds `Judge.judge` takes on the records as one list (the model loaded beforehand)."""
    from gavel.backends import load_backend
    from gavel.judge.engine import Judge
    from gavel.judge.records import JudgeRecord

    judge = Judge(load_backend(None, batch_size=batch), mode="verdict")
    items = [JudgeRecord.model_validate(r) for r in records]
    start = time.perf_counter()
    judge.judge(items)
    seconds = time.perf_counter() - start
    judge.backend.close()
    return seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict, log: Path, max_batch: int, batch: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gavel.cli", "serve", "--mode", "verdict", "--port", str(port),
               "--max-batch", str(max_batch), "--batch", str(batch), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gavel serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gavel serve did not start within 120 s")


async def client(http: httpx.AsyncClient, requests: list[list[dict]], log: list[dict]) -> None:
    for records in requests:
        start = time.perf_counter()
        response = await http.post("/v1/judge", json={"records": records})
        ids = [r["id"] for r in response.json().get("results", [])] if response.status_code == 200 else []
        log.append({"status": response.status_code, "seconds": time.perf_counter() - start,
                    "sent": [r["id"] for r in records], "answered": ids})


async def load(url: str, plan: list[list[list[dict]]]) -> tuple[list[dict], float]:
    log: list[dict] = []
    limits = httpx.Limits(max_connections=len(plan))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http, requests, log) for requests in plan))
        return log, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads, for both sides")
    parser.add_argument("--max-batch", type=int, default=16, help="the server's micro-batch (records)")
    parser.add_argument("--batch", type=int, default=1, help="llama.cpp sequences per forward pass, both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    os.environ[THREADS_ENV] = str(args.threads)

    plan = make_requests(args.clients, args.requests, args.seed)
    records = [r for requests in plan for batch in requests for r in batch]
    print(f"{len(records)} records in {args.clients * args.requests} requests; Judge.judge first …", flush=True)
    judge_before_s = run_judge(records, args.batch)

    port = free_port()
    server_log = Path(os.environ.get("TMPDIR", "/tmp")) / f"gavel-serve-load-{port}.log"
    server = start_server(port, {**os.environ}, server_log, args.max_batch, args.batch)
    try:
        log, serve_s = asyncio.run(load(f"http://127.0.0.1:{port}", plan))
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.send_signal(signal.SIGTERM)
        exit_code = server.wait(timeout=120)
    print("Judge.judge again …", flush=True)
    judge_after_s = run_judge(records, args.batch)
    judge_s = (judge_before_s + judge_after_s) / 2

    sent = sorted(i for entry in log for i in entry["sent"])
    answered = sorted(i for entry in log for i in entry["answered"])
    statuses = {str(s): sum(e["status"] == s for e in log) for s in sorted({e["status"] for e in log})}
    latencies = [e["seconds"] for e in log]
    batch_sum, batch_count = (_metric(metrics, f"gavel_batch_size_{k}") for k in ("sum", "count"))
    figures = {
        "clients": args.clients, "requests": len(log), "records": len(records), "threads": args.threads,
        "batch": args.batch,
        "judge_judge_s": judge_s, "judge_judge_before_s": judge_before_s, "judge_judge_after_s": judge_after_s,
        "judge_judge_records_per_s": len(records) / judge_s,
        "serve_s": serve_s, "serve_records_per_s": len(records) / serve_s,
        "ratio": judge_s / serve_s,
        "latency_p50_s": percentile(latencies, 50), "latency_p99_s": percentile(latencies, 99),
        "statuses": statuses, "every_request_answered_once": answered == sent and len(log) == len(plan) * args.requests,
        "mean_batch": batch_sum / batch_count if batch_count else None, "server_exit_code": exit_code,
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1) + "\n")
    ok = figures["every_request_answered_once"] and not any(s.startswith("5") for s in statuses)
    raise SystemExit(0 if ok and exit_code == 0 else 1)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


if __name__ == "__main__":
    main()
