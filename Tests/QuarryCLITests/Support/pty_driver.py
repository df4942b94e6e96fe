#!/usr/bin/env python3
"""Drives a program in a real pseudo-terminal for the REPL tests (stdlib only).

usage: pty_driver.py PROGRAM [ARG...] < steps.json
steps: [{"send": "text"}, {"expect": "regex", "timeout": 5}, {"sleep": 0.2}]
prints JSON: {"ok": bool, "failed": index-or-null, "elapsed": [seconds per expect], "transcript": "..."}
"""
import json, os, pty, re, select, signal, sys, time

steps = json.load(sys.stdin)
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.environ["COLUMNS"] = "120"
    os.execvp(sys.argv[1], sys.argv[1:])

transcript = b""
position = 0
result = {"ok": True, "failed": None, "elapsed": []}

def read_some(timeout):
    global transcript
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return False
        transcript += data
        return bool(data)
    return True

for index, step in enumerate(steps):
    if "send" in step:
        os.write(fd, step["send"].encode())
    elif "sleep" in step:
        end = time.time() + step["sleep"]
        while time.time() < end:
            read_some(max(0, end - time.time()))
    elif "expect" in step:
        pattern = re.compile(step["expect"].encode(), re.S)
        start = time.time()
        deadline = start + step.get("timeout", 5)
        found = False
        while time.time() < deadline:
            match = pattern.search(transcript, position)
            if match:
                position = match.end()
                found = True
                break
            if not read_some(0.05):
                break
        if not found:
            match = pattern.search(transcript, position)
            if match:
                position = match.end()
                found = True
        result["elapsed"].append(round(time.time() - start, 3))
        if not found:
            result["ok"] = False
            result["failed"] = index
            break

try:
    os.kill(pid, signal.SIGKILL)
except ProcessLookupError:
    pass
os.waitpid(pid, 0)
result["transcript"] = transcript.decode("utf-8", "replace")
print(json.dumps(result))
