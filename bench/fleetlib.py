"""Helpers shared by the fleet benchmarks: run the quarry binary, read a process's memory."""
import os, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
Q = os.environ.get("QUARRY", os.path.join(ROOT, ".build/release/quarry"))


def quarry(*args, check=True):
    out = subprocess.run([Q, *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"quarry {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def rss_kib(pid):
    """Resident memory of a process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def with_limits(server_yaml, **limits):
    """server.yaml text with its `limits:` section replaced by these keys (older servers ignore it)."""
    lines, skipping = [], False
    for line in server_yaml.splitlines():
        if line.startswith("limits:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        lines.append(line)
    lines.append("limits:")
    lines += [f"  {k}: {v}" for k, v in limits.items()]
    return "\n".join(lines) + "\n"
