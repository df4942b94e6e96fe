#!/usr/bin/env python3
"""Load test: N simulated agents (one process, real enrolment and mutual TLS per agent) against
1 frontend on SQLite, 1 on PostgreSQL and 3 on PostgreSQL. Prints a Markdown table.

bench/loadtest.py [N] [modes...]   (default N=10000, modes: sqlite1 pg1 pg3)
Environment: QUARRY (release binary), SIM (release quarry-agent-sim), ROWS (rows per agent, 10),
INGEST_ROWS (rows per agent in the ingestion phase, 100).
"""
import json, os, random, shutil, signal, subprocess, sys, tempfile, time, urllib.request, ssl, glob

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import ROOT, Q, quarry, rss_kib, with_limits  # noqa: E402
SIM = os.environ.get("SIM", os.path.join(ROOT, ".build/release/quarry-agent-sim"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
MODES = sys.argv[2:] or ["sqlite1", "pg1", "pg3"]
ROWS = int(os.environ.get("ROWS", "10"))
INGEST_ROWS = int(os.environ.get("INGEST_ROWS", "100"))
TEST_ROWS = """name: Test.Rows
parameters:
  - name: Count
    type: int
    default: "10"
sources:
  - query: SELECT _value AS N FROM range(start=0, end=Count)
"""


def log(*a):
    print(*a, file=sys.stderr, flush=True)




class Postgres:
    """A throwaway PostgreSQL on a Unix socket (Debian's binaries, run as the postgres user)."""

    def __init__(self, work):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bins[-1]
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        shutil.chown(self.dir, "postgres", "postgres")
        os.chmod(self.dir, 0o700)
        self.as_pg(f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "--no-sync")
        self.as_pg(f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-l", f"{self.dir}/log", "-w", "start", "-o",
                   f"-c listen_addresses='' -c unix_socket_directories={self.dir} -c max_connections=400 -c shared_buffers=512MB")
        self.as_pg(f"{self.bin}/createdb", "-h", self.dir, "-U", "postgres", "quarry")
        self.url = f"postgres:///quarry?host={self.dir}&user=postgres"

    def as_pg(self, *args):
        cmd = list(args) if os.getuid() != 0 else ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(cmd, check=True, capture_output=True)

    def sql(self, query):
        out = subprocess.run(["runuser", "-u", "postgres", "--", f"{self.bin}/psql", "-h", self.dir, "-U", "postgres", "-d", "quarry", "-At", "-c", query],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def stop(self):
        try:
            self.as_pg(f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", "immediate", "stop")
        except Exception:
            pass


def api_get(base, key, path, ctx):
    req = urllib.request.Request(base + "/api/v1" + path, headers={"Authorization": "Bearer " + key})
    with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
        return json.loads(r.read())


def run_mode(mode, work):
    frontends = 3 if mode == "pg3" else 1
    ports = [random.randint(20000, 50000) + i for i in range(frontends)]
    os.makedirs(work)
    pg = Postgres(work) if mode.startswith("pg") else None
    procs, servers = [], []
    result = {"mode": mode, "N": N}
    try:
        quarry("config", "generate", "--server-url", f"https://127.0.0.1:{ports[0]}", "--dir", f"{work}/srv")
        os.makedirs(f"{work}/defs")
        with open(f"{work}/defs/rows.yaml", "w") as f:
            f.write(TEST_ROWS)
        # One simulator enrols and connects every agent from 127.0.0.1: lift the per-address limits.
        base = with_limits(open(f"{work}/srv/server.yaml").read(), max_unverified_connections_per_address=0,
                           requests_per_second_per_address=0, max_connections=N + 1000)
        if pg:
            base = "\n".join(l for l in base.splitlines() if not l.startswith("datastore:")) + f"\ndatastore: '{pg.url}'\n"
        for i, port in enumerate(ports):
            text = base.replace(f"port: {ports[0]}", f"port: {port}")
            with open(f"{work}/srv/server{i}.yaml", "w") as f:
                f.write(text)
            os.chmod(f"{work}/srv/server{i}.yaml", 0o600)
        with open(f"{work}/client.yaml", "w") as f:
            f.write(quarry("config", "client", "--server-config", f"{work}/srv/server0.yaml"))
        for i in range(frontends):
            p = subprocess.Popen([Q, "server", "--config", f"{work}/srv/server{i}.yaml", "--definitions", f"{work}/defs"],
                                 stdout=open(f"{work}/server{i}.log", "w"), stderr=subprocess.STDOUT)
            procs.append(p)
            servers.append(p)
            for _ in range(100):
                if "listening on" in open(f"{work}/server{i}.log").read():
                    break
                time.sleep(0.1)
        time.sleep(1)
        idle = sum(rss_kib(p.pid) for p in servers)
        key = [l.split(":", 1)[1].strip() for l in open(f"{work}/srv/api.yaml") if l.startswith("api_key:")][0]
        ctx = ssl.create_default_context(cafile=None)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        urls = sum((["--server-url", f"https://127.0.0.1:{p}"] for p in ports), [])
        sim_log = open(f"{work}/sim.log", "w")
        sim = subprocess.Popen([SIM, "--config", f"{work}/client.yaml", "--count", str(N), "--identities", f"{work}/ids",
                                "--rows", str(ROWS), "--connect-rate", "1000", *urls], stdout=sim_log, stderr=subprocess.STDOUT)
        procs.append(sim)

        def stats():
            try:
                lines = open(f"{work}/sim.log").read().strip().splitlines()
                return json.loads(lines[-1]) if lines else {}
            except Exception:
                return {}

        t = time.time()
        while stats().get("connected", 0) < N or stats().get("requests", 0) < N:
            if time.time() - t > 900:
                raise RuntimeError(f"only {stats()} after 900 s")
            time.sleep(1)
        result["enrol+connect s"] = round(time.time() - t, 1)
        # Held steady: connected stays at N for 20 s.
        low = N
        for _ in range(20):
            time.sleep(1)
            low = min(low, stats().get("connected", 0))
        result["connected (min over 20 s)"] = low
        busy = sum(rss_kib(p.pid) for p in servers)
        result["server RSS MiB"] = round(busy / 1024)
        result["RSS MiB per 1k agents"] = round((busy - idle) / 1024 / N * 1000, 1)
        base_url = f"https://127.0.0.1:{ports[0]}"

        def hunt(args, expected_rows, kill=None):
            before = stats().get("huntRequests", 0)
            t0 = time.time()
            h = quarry("hunt", "create", *args, "--api-config", f"{work}/srv/api.yaml").strip()
            if kill is not None:
                time.sleep(0.3)
                os.kill(servers[kill].pid, signal.SIGKILL)
            delivered = stored = None
            while True:
                s = stats()
                if delivered is None and s.get("huntRequests", 0) - before >= N:
                    delivered = s["lastRequestAt"] - t0
                view = api_get(base_url, key, f"/hunts/{h}?clients=0", ctx)
                done = sum(v for k, v in view["states"].items() if k in ("finished", "error", "timed out", "cancelled"))
                if done >= N:
                    stored = time.time() - t0
                    break
                if time.time() - t0 > 600:
                    raise RuntimeError(f"hunt {h}: {view['states']} after 600 s")
                time.sleep(0.25)
            # The simulator prints its counters once a second: read the last request time from them.
            for _ in range(30):
                s = stats()
                if s.get("huntRequests", 0) - before >= N:
                    delivered = s["lastRequestAt"] - t0
                    break
                time.sleep(0.5)
            return h, delivered, stored, view

        h, delivered, stored, view = hunt(["Linux.Sys.Pslist"], ROWS)
        result["hunt -> all have request s"] = round(delivered or -1, 2)
        result[f"hunt -> all {ROWS} rows stored s"] = round(stored, 2)
        h2, _, stored2, view2 = hunt(["Test.Rows", "--args", f"Count={INGEST_ROWS}"], INGEST_ROWS)
        rows = sum(s["rows"] for s in view2["sources"])
        result["ingest rows/s"] = round(rows / stored2)
        result["ingest rows"] = rows
        if mode == "pg3":
            h3, _, stored3, view3 = hunt(["Test.Rows", "--args", f"Count={ROWS}"], ROWS, kill=1)
            counted = int(pg.sql(f"SELECT count(*) FROM results r JOIN flows f ON f.flow_id = r.flow_id WHERE f.hunt_id = '{h3}'"))
            distinct = int(pg.sql(f"SELECT count(DISTINCT (r.flow_id, r.json)) FROM results r JOIN flows f ON f.flow_id = r.flow_id WHERE f.hunt_id = '{h3}'"))
            flows = int(pg.sql(f"SELECT count(*) FROM flows WHERE hunt_id = '{h3}'"))
            result["kill -9 1 of 3: rows stored/expected"] = f"{counted}/{N * ROWS} (distinct {distinct}, flows {flows}, finished {view3['states'].get('finished', 0)})"
            result["kill -9 1 of 3: all stored s"] = round(stored3, 2)
        return result
    finally:
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except Exception:
                pass
        for p in procs:
            p.wait()
        if pg:
            pg.stop()


def main():
    results = []
    for mode in MODES:
        work = tempfile.mkdtemp(prefix=f"quarry-load-{mode}-")
        shutil.rmtree(work)
        log(f"== {mode}: {N} simulated agents ({work})")
        try:
            r = run_mode(mode, work)
            log(json.dumps(r))
            results.append(r)
        except Exception as e:
            log(f"{mode} failed: {e}")
            results.append({"mode": mode, "N": N, "error": str(e)})
        finally:
            if not os.environ.get("KEEP"):
                shutil.rmtree(work, ignore_errors=True)
    keys = []
    for r in results:
        keys += [k for k in r if k not in keys]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


main()
