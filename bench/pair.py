#!/usr/bin/env python3
"""Runs Quarry and a peer tool interleaved (quarry, peer, quarry, peer, …) so that load from other
work on a shared machine hits both alike, then prints each side's median wall time, its spread
(min–max), median CPU time (user+sys of the child) and the ratio of the medians (quarry / peer).

Usage: bench/pair.py NAME RUNS 'QUARRY COMMAND' 'PEER COMMAND' [GOAL]
Both commands run through /bin/sh with stdout and stderr to /dev/null; a warm-up run of each
comes first (page cache)."""
import os, statistics, subprocess, sys, time


def timed(command):
    start = time.perf_counter()
    before = os.times()
    subprocess.run(command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = os.times()
    wall = time.perf_counter() - start
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, runs, quarry, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    goal = sys.argv[5] if len(sys.argv) > 5 else "-"
    timed(quarry)
    timed(peer)
    q, p = [], []
    for _ in range(runs):
        q.append(timed(quarry))
        p.append(timed(peer))
    qw, pw = [w for w, _ in q], [w for w, _ in p]
    qm, pm = statistics.median(qw), statistics.median(pw)
    qc, pc = statistics.median([c for _, c in q]), statistics.median([c for _, c in p])
    ratios = sorted(a / b for a, b in zip(qw, pw))
    print(f"{name:<12} runs={runs}  quarry {qm:.3f}s ({min(qw):.3f}–{max(qw):.3f}, cpu {qc:.3f}s)  "
          f"peer {pm:.3f}s ({min(pw):.3f}–{max(pw):.3f}, cpu {pc:.3f}s)  "
          f"ratio {qm / pm:.2f}x (pairwise {ratios[0]:.2f}–{ratios[-1]:.2f})  goal {goal}")


if __name__ == "__main__":
    main()
