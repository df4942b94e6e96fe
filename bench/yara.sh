#!/usr/bin/env bash
# yara() and proc_yara() beside the yara command line tool, interleaved (bench/pair.py): the same
# rules over every file under a directory (default /usr/bin), with the same thread count.
# Usage: bench/yara.sh [RUNS] [DIR]     (needs the Debian package yara for the peer)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${QUARRY:-.build/release/quarry}
RUNS=${1:-5}
DIR=${2:-/usr/bin}
command -v yara >/dev/null || { echo "yara missing: apt-get install yara" >&2; exit 1; }
mkdir -p bench/out
RULES=$PWD/bench/out/bench.yar
cat > "$RULES" <<'RULES'
rule ElfExecutable { condition: uint32(0) == 0x464c457f }
rule ShellScript { strings: $sh = "#!/bin/sh" $bash = "#!/bin/bash" $env = "#!/usr/bin/env" condition: $sh at 0 or $bash at 0 or $env at 0 }
rule Credentials { strings: $shadow = "/etc/shadow" $preload = "LD_PRELOAD" $ptrace = "ptrace" nocase condition: 2 of them }
rule PushRet { strings: $h = { 48 8B ?? ?? 48 89 ?? 24 } condition: #h > 10 }
rule Url { strings: $u = /https?:\/\/[a-z0-9.-]{4,40}\/[a-z]{3}/ condition: $u }
RULES
files="files={SELECT OSPath FROM glob(globs='$DIR/**') WHERE IsLink OR NOT IsDir}"
for threads in ${THREADS:-1 2}; do
  bench/pair.py "yara-p$threads" "$RUNS" \
    "$Q query --format jsonl \"SELECT Rule, FileName FROM yara(rules=read_file(filename='$RULES'), $files, workers=$threads)\"" \
    "yara -p $threads -r $RULES $DIR" "$([ "$threads" = 1 ] && echo 1.0 || echo 0.9)"
done
# Match counts, to show both did the same work.
echo "matches: quarry $($Q query --format jsonl "SELECT Rule, FileName FROM yara(rules=read_file(filename='$RULES'), $files)" 2>/dev/null | wc -l)," \
  "yara $(yara -r "$RULES" "$DIR" 2>/dev/null | wc -l)"
if [ -n "${PROC:-}" ]; then
  # proc_yara over every process vs yara over /proc/PID (yara's pid argument scans process memory).
  pids=$(ps -eo pid= | tr -d ' ' | grep -v "^$$\$")
  bench/pair.py "proc_yara" "$RUNS" \
    "$Q query --format jsonl \"SELECT * FROM foreach(row={SELECT Pid FROM pslist()}, query={SELECT Rule, Pid FROM proc_yara(pid=Pid, rules=read_file(filename='$RULES'))})\"" \
    "for p in $(echo $pids); do yara $RULES \$p; done" "-"
fi
