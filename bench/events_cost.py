#!/usr/bin/env python3
"""Cost of live event monitoring on this host, and auditd beside it, in one run.

Phases (each DURATION seconds, default 10), each with its own watcher process:
  exec     Linux.Events.ProcessExecutions (eBPF sched_process_exec, process tracker, user names)
           while a generator runs /bin/true RATE times a second (default 1,000) with a marker argument;
  connect  watch_ebpf(events='security_socket_connect') while a generator makes RATE connections a
           second to a loopback listener;
  open     watch_ebpf(events='security_file_open', path_prefix=WATCHED) while a generator opens a file
           outside WATCHED 100,000 times a second and one inside it every 1,000th time (the kernel
           filter must drop the rest);
  auditd   auditd with one execve rule (audit_log the same way auditd is usually run) during the exec
           load, for comparison. The audit rule, the audit switch and auditd are undone afterwards.
For each: the achieved rate, the watcher's CPU (% of one core, from /proc/PID/stat), its peak RSS
(VmHWM) and how many marked events it reported against how many were made (lost = made - seen).
Usage: bench/events_cost.py [DURATION] [RATE]; QUARRY=path/to/quarry (a release build) to choose
the binary, DEFINITIONS=DIR to run artifact definitions from DIR instead of the built-in ones. Needs root (eBPF, audit).
"""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
QUARRY = os.environ.get("QUARRY", os.path.join(HERE, "..", ".build", "release", "quarry"))
DURATION = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
RATE = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def paced(rate, duration, action):
    """Calls action(i) rate times a second for duration seconds; returns how many calls were made."""
    start = time.monotonic()
    made = 0
    while True:
        now = time.monotonic() - start
        if now >= duration:
            return made
        due = int(now * rate) + 1
        while made < due:
            action(made)
            made += 1
        time.sleep(0.0005)


class Watcher:
    """A `quarry query` printing JSON lines to a file; ready once its log says the source is attached."""

    def __init__(self, work, name, vql):
        self.out = os.path.join(work, name + ".jsonl")
        self.err = os.path.join(work, name + ".log")
        extra = ["--definitions", os.environ["DEFINITIONS"]] if os.environ.get("DEFINITIONS") else []
        self.proc = subprocess.Popen([QUARRY, "query", "--format", "jsonl"] + extra + [vql], stdout=open(self.out, "w"),
                                     stderr=open(self.err, "w"), stdin=subprocess.DEVNULL)

    def wait_ready(self, trigger, marker, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            trigger()
            time.sleep(0.2)
            if self.count(marker) > 0:
                return True
        return False

    def count(self, marker):
        with open(self.out, errors="replace") as f:
            return sum(1 for line in f if marker in line)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def spawn_true(argument):
    pid = os.posix_spawn("/bin/true", ["true", argument], {})
    os.waitpid(pid, 0)


def measure(watcher, marker, load, settle=2.0):
    before_cpu, before_seen = cpu_seconds(watcher.proc.pid), watcher.count(marker)
    start = time.monotonic()
    made = load()
    elapsed = time.monotonic() - start
    time.sleep(settle)
    cpu = cpu_seconds(watcher.proc.pid) - before_cpu
    seen = watcher.count(marker) - before_seen
    return {"rate": made / elapsed, "cpu": 100 * cpu / (elapsed + settle), "rss": peak_rss_mib(watcher.proc.pid),
            "made": made, "seen": seen}


def report(name, what, r):
    lost = r["made"] - min(r["seen"], r["made"])
    print(f"{name:<8} {what:<58} {r['rate']:>9.0f}/s {r['cpu']:>6.1f}% {r['rss']:>7.1f} MiB "
          f"{r['made']:>8} made {r['seen']:>8} seen {lost:>6} lost", flush=True)


def exec_phase(work, name="exec", what="Linux.Events.ProcessExecutions, /bin/true",
               vql="SELECT Pid, Exe, CommandLine FROM Artifact.Linux.Events.ProcessExecutions()"):
    marker = "quarry-cost-" + name
    w = Watcher(work, name, vql)
    try:
        if not w.wait_ready(lambda: spawn_true(marker + "-ready"), marker + "-ready"):
            print(f"{name}: the watcher did not start:", open(w.err).read()[-400:])
            return
        r = measure(w, marker + "-load", lambda: paced(RATE, DURATION, lambda i: spawn_true(marker + "-load")))
        report(name, what, r)
    finally:
        w.stop()


def exec_plugin_phase(work):
    exec_phase(work, "execbpf", "watch_ebpf(sched_process_exec) alone, /bin/true",
               "SELECT System.ProcessID AS Pid, EventData.argv AS Argv FROM watch_ebpf(events='sched_process_exec')")


def connect_phase(work):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()

    def connect(_):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        try:
            s.connect(("127.0.0.1", port))
        finally:
            s.close()

    marker = f":{port}"
    w = Watcher(work, "connect", "SELECT EventData FROM watch_ebpf(events='security_socket_connect')")
    try:
        if not w.wait_ready(lambda: connect(0), str(port)):
            print("connect: the watcher did not start:", open(w.err).read()[-400:])
            return
        r = measure(w, str(port), lambda: paced(RATE, DURATION, connect))
        report("connect", "watch_ebpf(security_socket_connect), loopback", r)
    finally:
        w.stop()
        stop.set()
        listener.close()


def open_phase(work):
    watched = os.path.join(work, "watched") + "/"
    other = os.path.join(work, "other")
    os.makedirs(watched)
    os.makedirs(other)
    hot, cold = os.path.join(watched, "marked-file"), os.path.join(other, "noise-file")
    for path in (hot, cold):
        open(path, "w").close()
    w = Watcher(work, "open", f"SELECT EventData.pathname AS Path FROM watch_ebpf(events='security_file_open', path_prefix='{watched}')")
    rate = 100 * RATE

    def opens(i):
        os.close(os.open(hot if i % 1000 == 0 else cold, os.O_RDONLY))

    try:
        if not w.wait_ready(lambda: opens(0), "marked-file"):
            print("open: the watcher did not start:", open(w.err).read()[-400:])
            return
        start_noise = time.monotonic()
        r = measure(w, "marked-file", lambda: paced(rate, DURATION, opens))
        r["made"] = (r["made"] + 999) // 1000  # marked opens only
        report("open", f"watch_ebpf(security_file_open, path_prefix), {rate:,}/s", r)
    finally:
        w.stop()


def auditd_phase(work):
    if not shutil.which("auditd") or not shutil.which("auditctl"):
        print("auditd   not installed: skipped")
        return
    log = os.path.join(work, "audit.log")
    conf = os.path.join(work, "auditd.conf")
    with open(conf, "w") as f:
        f.write(f"log_file = {log}\nlog_format = ENRICHED\nflush = INCREMENTAL_ASYNC\nfreq = 50\n"
                "num_logs = 2\nmax_log_file = 1024\nmax_log_file_action = ROTATE\nspace_left = 75\n"
                "space_left_action = IGNORE\nadmin_space_left = 50\nadmin_space_left_action = IGNORE\n"
                "disk_full_action = IGNORE\ndisk_error_action = IGNORE\n")
    os.chmod(conf, 0o600)
    was_enabled = "enabled 1" in subprocess.run(["auditctl", "-s"], capture_output=True, text=True).stdout
    daemon = subprocess.Popen(["auditd", "-n", "-c", work, "-s", "nochange"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = "quarry-cost-audit"
    try:
        time.sleep(1.5)
        subprocess.run(["auditctl", "-e", "1"], check=True, capture_output=True)
        subprocess.run(["auditctl", "-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", "quarrybench"], check=True, capture_output=True)

        class Audit:
            proc = daemon

            def count(self, m):
                if not os.path.exists(log):
                    return 0
                with open(log, errors="replace") as f:
                    return sum(1 for line in f if line.startswith("type=EXECVE") and m in line)

        a = Audit()
        deadline = time.monotonic() + 15
        while a.count(marker + "-ready") == 0 and time.monotonic() < deadline:
            spawn_true(marker + "-ready")
            time.sleep(0.2)
        r = measure(a, marker + "-load", lambda: paced(RATE, DURATION, lambda i: spawn_true(marker + "-load")), settle=3.0)
        report("auditd", "auditd, one execve rule, the same /bin/true load", r)
    finally:
        subprocess.run(["auditctl", "-d", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", "quarrybench"], capture_output=True)
        if not was_enabled:
            subprocess.run(["auditctl", "-e", "0"], capture_output=True)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(5)
        except subprocess.TimeoutExpired:
            daemon.kill()


def main():
    if os.geteuid() != 0:
        sys.exit("events_cost.py needs root (eBPF and audit)")
    work = tempfile.mkdtemp(prefix="quarry-bench-cost-")
    print(f"{QUARRY}; {DURATION:.0f} s per phase; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    print(f"{'phase':<8} {'watcher':<58} {'rate':>11} {'CPU':>7} {'peak RSS':>11}")
    try:
        for phase in (exec_phase, exec_plugin_phase, connect_phase, open_phase, auditd_phase):
            phase(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
