#!/usr/bin/env python3
"""API latency: sequential analyst calls against one server on loopback (release build).

For N calls each: GET /api/v1/whoami on one keep-alive TLS connection, the same on a new TLS
connection per call (what the CLI does), and GET /api/v1/clients with 0 clients; prints the median,
90th and 99th percentile in milliseconds as JSON. Usage: bench/api.py [N] (default 2000).
Environment: QUARRY (the binary, default .build/release/quarry).
"""
import http.client, json, os, random, shutil, signal, ssl, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Q, quarry, rss_kib, with_limits  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000


def percentiles(samples):
    ordered = sorted(samples)
    pick = lambda p: ordered[min(len(ordered) - 1, int(p * len(ordered)))]
    return {"p50 ms": round(statistics.median(ordered) * 1000, 3), "p90 ms": round(pick(0.9) * 1000, 3), "p99 ms": round(pick(0.99) * 1000, 3)}


def main():
    work = tempfile.mkdtemp(prefix="quarry-bench-api-")
    port = random.randint(20000, 59000)
    server = None
    try:
        quarry("config", "generate", "--server-url", f"https://127.0.0.1:{port}", "--dir", f"{work}/srv")
        config = with_limits(open(f"{work}/srv/server.yaml").read(), requests_per_second_per_address=0)
        with open(f"{work}/srv/server.yaml", "w") as f:
            f.write(config)
        server = subprocess.Popen([Q, "server", "--config", f"{work}/srv/server.yaml"], stdout=open(f"{work}/server.log", "w"), stderr=subprocess.STDOUT)
        for _ in range(100):
            if "listening on" in open(f"{work}/server.log").read():
                break
            time.sleep(0.1)
        key = [l.split(":", 1)[1].strip() for l in open(f"{work}/srv/api.yaml") if l.startswith("api_key:")][0]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        headers = {"Authorization": "Bearer " + key}

        def timed(connection, path):
            t0 = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
            return time.perf_counter() - t0

        result = {"calls": N}
        kept = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
        for _ in range(50):
            timed(kept, "/api/v1/whoami")
        result["whoami, keep-alive"] = percentiles([timed(kept, "/api/v1/whoami") for _ in range(N)])
        result["clients, keep-alive"] = percentiles([timed(kept, "/api/v1/clients") for _ in range(N)])
        kept.close()
        fresh = []
        for _ in range(N):
            t0 = time.perf_counter()
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
            timed(c, "/api/v1/whoami")
            c.close()
            fresh.append(time.perf_counter() - t0)
        result["whoami, new TLS connection each"] = percentiles(fresh)
        result["server RSS MiB"] = round(rss_kib(server.pid) / 1024, 1)
        print(json.dumps(result, indent=1))
    finally:
        if server:
            server.send_signal(signal.SIGKILL)
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
