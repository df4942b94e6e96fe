#!/usr/bin/env python3
"""Issue 15's attacks on the server, against a given binary: prints what each did to the server.

  posts    8 anonymous POSTs announcing 250 MiB each: server RSS before/peak, time to the answer.
  idle     idle raw TCP and TLS connections: when (whether) the server closes them.
  enrol    20 refused enrolments with 8 MiB host names: audit bytes added, RSS.
  results  one reader of 1,000,000 stored rows (the whole flow, page by page where the server
           pages): server RSS peak, time, and the latency of other calls meanwhile.

Usage: bench/attack.py [scenario ...]  (default: all). Environment: QUARRY (the binary).
Run it against the binary before and after a change to compare.
"""
import base64, http.client, json, os, random, shutil, signal, socket, sqlite3, ssl, struct, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleetlib import Q, quarry, rss_kib  # noqa: E402

SCENARIOS = sys.argv[1:] or ["posts", "idle", "enrol", "results"]


class Server:
    def __init__(self, work):
        self.work, self.port = work, random.randint(20000, 59000)
        quarry("config", "generate", "--server-url", f"https://127.0.0.1:{self.port}", "--dir", f"{work}/srv")
        self.key = [l.split(":", 1)[1].strip() for l in open(f"{work}/srv/api.yaml") if l.startswith("api_key:")][0]
        self.secret = [l.split(":", 1)[1].strip() for l in open(f"{work}/srv/server.yaml") if l.startswith("enrollment_secret:")][0]
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.proc = None

    def start(self):
        log = f"{self.work}/server.log"
        before = open(log).read().count("listening on") if os.path.exists(log) else 0
        self.proc = subprocess.Popen([Q, "server", "--config", f"{self.work}/srv/server.yaml"], stdout=open(log, "a"), stderr=subprocess.STDOUT)
        for _ in range(200):
            if open(log).read().count("listening on") > before:
                return
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def rss(self):
        return rss_kib(self.proc.pid) // 1024

    def tls(self):
        raw = socket.create_connection(("127.0.0.1", self.port))
        return self.ctx.wrap_socket(raw)

    def get(self, path):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=600)
        c.request("GET", "/api/v1" + path, headers={"Authorization": "Bearer " + self.key})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body


class Peak:
    """Samples the server's RSS every 20 ms."""

    def __init__(self, server):
        self.server, self.peak, self.stop_flag = server, server.rss(), False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag:
            self.peak = max(self.peak, self.server.rss())
            time.sleep(0.02)

    def stop(self):
        self.stop_flag = True
        self.thread.join()
        return self.peak


def posts(server):
    server.start()
    server.get("/whoami")
    before, peak = server.rss(), Peak(server)
    total, results = 250 << 20, []

    def one():
        s = server.tls()
        s.settimeout(120)
        t0 = time.time()
        s.sendall(f"POST /api/v1/hunts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n".encode())
        answered, sent, block, answer = None, 0, b"x" * (1 << 20), b""
        s.setblocking(False)
        while sent < total and answered is None:
            try:
                sent += s.send(block)
            except (BlockingIOError, ssl.SSLWantWriteError):
                time.sleep(0.001)
            except OSError:
                break
            try:
                answer += s.recv(4096)
                if answer:
                    answered = time.time() - t0
            except (BlockingIOError, ssl.SSLWantReadError):
                pass
            except OSError:
                break
        s.setblocking(True)
        if answered is None:
            try:
                answer = s.recv(4096)
                answered = time.time() - t0
            except OSError:
                pass
        results.append({"answer": answer.split(b"\r\n")[0].decode(errors="replace"), "answered s": round(answered or -1, 3), "body MiB sent": sent >> 20})
        s.close()

    threads = [threading.Thread(target=one) for _ in range(8)]
    t0 = time.time()
    [t.start() for t in threads]
    [t.join() for t in threads]
    return {"RSS MiB before": before, "RSS MiB peak": peak.stop(), "all answered s": round(time.time() - t0, 2), "connections": results}


def idle(server):
    server.start()
    out = {}
    for kind in ("raw TCP", "TLS"):
        s = socket.create_connection(("127.0.0.1", server.port)) if kind == "raw TCP" else server.tls()
        s.settimeout(40)
        t0 = time.time()
        try:
            data = s.recv(1)
            out[kind] = f"closed after {time.time() - t0:.1f} s" if not data else "got data"
        except socket.timeout:
            out[kind] = "still open after 40 s"
        except OSError as e:
            out[kind] = f"closed after {time.time() - t0:.1f} s ({e.__class__.__name__})"
        s.close()
    return out


def ws_enrol(server, hostname):
    """One enrolment with a wrong secret over a hand-made WebSocket; the server's answer (or None)."""
    s = server.tls()
    s.settimeout(30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /agent HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            return None
        head += chunk
    message = json.dumps({"enroll": {"secret": "wrong", "csr": "x", "hostname": hostname, "labels": []}}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(message)) if len(message) < 1 << 16 else (
        (int.from_bytes(message, "big") ^ int.from_bytes((mask * (len(message) // 4 + 1))[: len(message)], "big")).to_bytes(len(message), "big"))
    frame = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", len(message)) + mask + masked
    try:
        s.sendall(frame)
        answer = s.recv(65536)
    except OSError:
        answer = b""
    s.close()
    return answer


def enrol(server):
    server.start()
    db = f"{server.work}/srv/data/fleet.db"
    server.get("/whoami")
    before_bytes = sum(os.path.getsize(db + ext) for ext in ("", "-wal") if os.path.exists(db + ext))
    peak, refused = Peak(server), 0
    for _ in range(20):
        if ws_enrol(server, "h" * (8 << 20)):
            refused += 1
    status, body = server.get("/audit?limit=1000")
    entries = [e for e in json.loads(body) if e["action"] == "enrol-refused"] if status == 200 else []
    after_bytes = sum(os.path.getsize(db + ext) for ext in ("", "-wal") if os.path.exists(db + ext))
    return {"answers": refused, "audited": len(entries), "audit target bytes": sum(len(e["target"]) for e in entries),
            "datastore MiB added": round((after_bytes - before_bytes) / 2**20, 1), "RSS MiB peak": peak.stop(), "RSS MiB after": server.rss()}


def results(server, rows=1_000_000):
    server.start()
    server.stop()
    db = sqlite3.connect(f"{server.work}/srv/data/fleet.db")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("INSERT INTO clients (client_id, enrolled_at, last_seen) VALUES ('C.1', 1, 1)")
    request = json.dumps({"artifacts": ["Test.Rows"], "parameters": {}})
    db.execute("INSERT INTO flows (flow_id, client_id, request, state, creator, created_at, row_count) VALUES ('F.1', 'C.1', ?, 'finished', 'admin', 1, ?)", (request, rows))
    for seq in range(rows // 1000):
        db.execute("INSERT INTO flow_batches (flow_id, seq, kind, artifact, source, row_count) VALUES ('F.1', ?, 'rows', 'Test.Rows', '', 1000)", (seq + 1,))
        db.executemany("INSERT INTO results (flow_id, seq, row_index, artifact, source, json) VALUES ('F.1', ?, ?, 'Test.Rows', '', ?)",
                       [(seq + 1, i, json.dumps({"N": seq * 1000 + i, "Text": f"row-{seq * 1000 + i}", "Pad": "p" * 100})) for i in range(1000)])
    db.commit()
    db.close()
    server.start()
    server.get("/whoami")
    before, peak, done, probes = server.rss(), Peak(server), [], []

    def probe():
        while not done:
            t0 = time.time()
            server.get("/hunts")
            probes.append(time.time() - t0)
            time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    t0, got, after, pages = time.time(), 0, None, 0
    while True:
        path = "/results?flow_id=F.1&limit=100000" + (f"&after={after}" if after else "")
        status, body = server.get(path)
        pages += 1
        if body.startswith(b"["):
            got += len(json.loads(body))
            break
        lines = body.splitlines()
        got += len(lines)
        if len(lines) < 100000:
            break
        last = json.loads(lines[-1])
        after = f"{last['flowId']}/{last['seq']}/{last['index']}"
    took = time.time() - t0
    done.append(True)
    prober.join()
    return {"rows read": got, "requests": pages, "read s": round(took, 2), "RSS MiB before": before, "RSS MiB peak": peak.stop(),
            "other calls meanwhile": len(probes), "slowest other call s": round(max(probes or [0]), 3)}


def main():
    out = {"binary": Q}
    for name in SCENARIOS:
        work = tempfile.mkdtemp(prefix=f"quarry-attack-{name}-")
        server = Server(work)
        try:
            out[name] = globals()[name](server)
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({name: out[name]}, indent=1), flush=True)


if __name__ == "__main__":
    main()
