#!/usr/bin/env python3
"""Client event latency: an event made on an agent -> its row stored on the server.

One server and one agent on loopback. The monitoring table gets Bench.Tick, an event artifact on
clock(ms=...) whose rows carry the agent's time of the event (UnixNano); each stored row carries the
server's time of receipt (_ts, set just before the row is written in the same call). Both processes
share the host clock, so _ts - UnixNano is the whole path: the query, the agent's 200 ms batching,
its on-disk queue, TLS/WebSocket, and ingestion. Prints p50/p90/p99/max over N events.
Usage: bench/events_latency.py [N] (default 200); QUARRY=path/to/quarry to choose the binary.
"""
import datetime, json, os, random, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Q, quarry  # noqa: E402
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200

ARTIFACT = """name: Bench.Tick
type: CLIENT_EVENT
sources:
  - query: SELECT UnixNano AS Nano FROM clock(ms=50)
"""


def seconds(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    work = tempfile.mkdtemp(prefix="quarry-bench-events-")
    port = random.randint(20000, 59000)
    procs = []
    try:
        quarry("config", "generate", "--server-url", f"https://127.0.0.1:{port}", "--dir", f"{work}/srv")
        with open(f"{work}/client.yaml", "w") as f:
            f.write(quarry("config", "client", "--server-config", f"{work}/srv/server.yaml"))
        os.makedirs(f"{work}/defs")
        with open(f"{work}/defs/tick.yaml", "w") as f:
            f.write(ARTIFACT)
        api = ["--api-config", f"{work}/srv/api.yaml"]
        procs.append(subprocess.Popen([Q, "server", "--config", f"{work}/srv/server.yaml", "--definitions", f"{work}/defs"],
                                      stdout=open(f"{work}/server.log", "w"), stderr=subprocess.STDOUT))
        time.sleep(1)
        procs.append(subprocess.Popen([Q, "client", "--config", f"{work}/client.yaml", "--state-dir", f"{work}/agent"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{work}/agent.log", "w")))
        deadline = time.time() + 120
        while not any(c["Connected"] for c in json.loads(quarry("clients", "list", "--format", "json", *api, check=False) or "[]")):
            if time.time() > deadline:
                sys.exit("the agent did not connect within 120 s")
            time.sleep(0.5)
        quarry("monitoring", "add", "Bench.Tick", "--format", "json", *api)
        rows = []
        deadline = time.time() + 300
        while len(rows) < N + 20 and time.time() < deadline:
            time.sleep(1)
            out = quarry("events", "Bench.Tick", "--format", "jsonl", *api)
            rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        # The first rows wait for the table to arrive and the query to start: skip them.
        latencies = [seconds(r["_ts"]) - r["Nano"] / 1e9 for r in rows[20:20 + N]]
        if not latencies:
            sys.exit("no events stored")
        ms = [x * 1000 for x in latencies]
        print(f"{len(ms)} events, agent event -> stored on server: p50 {percentile(ms, 50):.0f} ms, "
              f"p90 {percentile(ms, 90):.0f} ms, p99 {percentile(ms, 99):.0f} ms, max {max(ms):.0f} ms ({Q})")
    finally:
        for p in procs:
            p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
