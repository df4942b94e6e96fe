#!/usr/bin/env python3
"""Fleet benchmark: N real agent processes against one server on loopback.

Measures enrolment time, time from `hunt create` to every agent having started the collection and to
all results stored, rows stored, and server/agent memory. Usage: bench/fleet.py [N] (default 200).
"""
import json, os, random, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import ROOT, Q, quarry, rss_kib, with_limits  # noqa: E402
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
ARTIFACT = os.environ.get("ARTIFACT", "Linux.Sys.Pslist")




def main():
    work = tempfile.mkdtemp(prefix="quarry-bench-fleet-")
    port = random.randint(20000, 59000)
    procs = []
    try:
        quarry("config", "generate", "--server-url", f"https://127.0.0.1:{port}", "--dir", f"{work}/srv")
        with open(f"{work}/client.yaml", "w") as f:
            f.write(quarry("config", "client", "--server-config", f"{work}/srv/server.yaml"))
        api = ["--api-config", f"{work}/srv/api.yaml"]
        # Every agent enrols and connects from 127.0.0.1 at once: lift the per-address limits.
        config = with_limits(open(f"{work}/srv/server.yaml").read(), max_unverified_connections_per_address=0, requests_per_second_per_address=0)
        with open(f"{work}/srv/server.yaml", "w") as f:
            f.write(config)
        server = subprocess.Popen([Q, "server", "--config", f"{work}/srv/server.yaml"], stdout=open(f"{work}/server.log", "w"), stderr=subprocess.STDOUT)
        procs.append(server)
        time.sleep(0.5)
        start = time.time()
        for i in range(N):
            procs.append(subprocess.Popen([Q, "client", "--config", f"{work}/client.yaml", "--state-dir", f"{work}/a{i}"],
                                          stdout=subprocess.DEVNULL, stderr=open(f"{work}/a{i}.log", "w")))
        while True:
            clients = json.loads(quarry("clients", "list", "--format", "json", *api) or "[]")
            ready = sum(1 for c in clients if c["Connected"] and c["OS"])
            if ready >= N:
                break
            if time.time() - start > 600:
                sys.exit(f"only {ready} of {N} agents ready after 600 s")
            time.sleep(0.5)
        enrolled = time.time() - start
        time.sleep(2)
        idle_rss = rss_kib(server.pid)
        t0 = time.time()
        hunt = quarry("hunt", "create", ARTIFACT, *api).strip()
        delivered = None
        while True:
            view = json.loads(subprocess.run([Q, "hunt", "show", hunt, "--format", "json", *api], capture_output=True, text=True).stdout or "[]")
            started = sum(1 for c in view if c["State"] != "scheduled")
            done = sum(1 for c in view if c["State"] in ("finished", "error", "timed out", "cancelled"))
            if delivered is None and started >= N:
                delivered = time.time() - t0
            if done >= N:
                break
            if time.time() - t0 > 600:
                sys.exit(f"only {done} of {N} done after 600 s")
            time.sleep(0.1)
        stored = time.time() - t0
        rows = json.loads(quarry("query", "--server", *api, "--format", "json",
                                 f"SELECT count() AS N FROM hunt_results(hunt_id='{hunt}') GROUP BY 1"))[0]["N"]
        finished = sum(1 for c in view if c["State"] == "finished")
        busy_rss = rss_kib(server.pid)
        agent_rss = sorted(rss_kib(p.pid) for p in procs[1:])
        print(f"agents (separate processes)        {N}")
        print(f"enrolled + client info collected   {enrolled:.1f} s")
        print(f"hunt create -> all agents started  {delivered:.2f} s")
        print(f"hunt create -> all results stored  {stored:.2f} s ({finished} finished, {rows} rows of {ARTIFACT})")
        print(f"server RSS idle / after hunt       {idle_rss/1024:.0f} MiB / {busy_rss/1024:.0f} MiB")
        print(f"agent RSS median / max             {agent_rss[len(agent_rss)//2]/1024:.0f} MiB / {agent_rss[-1]/1024:.0f} MiB")
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


main()
