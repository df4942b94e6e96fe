#!/usr/bin/env bash
# Host plugin benchmarks: each quarry query runs beside the classic tool doing the same job, in one
# hyperfine invocation; the ratio is quarry's mean time / the tool's mean time (lower is better).
# Usage: bench/host.sh [name…]   (names: glob, globstat, sha256, md5, pslist, pslist100, netstat,
#        netstat100; default: all). The *100 variants list 100 times in one quarry process against
#        the tool run 100 times in a shell loop, so process start-up does not dominate.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${QUARRY:-.build/release/quarry}
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
[ -x "$Q" ] || swift build -c release --product quarry
mkdir -p bench/out
names=("$@")
selected() { [ ${#names[@]} -eq 0 ] && return 0; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

mean() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.4f" % r[int(sys.argv[2])]["mean"])' "$1" "$2"; }
ratio() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.2f" % (r[0]["mean"]/r[1]["mean"]))' "$1"; }

printf '%-10s %-62s %10s %10s %7s %6s\n' bench "quarry vs tool" "quarry s" "tool s" ratio goal
report() { # report NAME GOAL DESCRIPTION
  local f=bench/out/host-$1.json
  printf '%-10s %-62s %10s %10s %6sx %5sx\n' "$1" "$3" "$(mean "$f" 0)" "$(mean "$f" 1)" "$(ratio "$f")" "$2"
}
run() { # run NAME RUNS QUARRY_QUERY TOOL_COMMAND
  hyperfine -w 1 -r "$2" --export-json "bench/out/host-$1.json" \
    "$Q query --format jsonl \"$3\" > /dev/null 2>&1" "$4 > /dev/null 2>&1" >/dev/null
}

if selected glob; then
  run glob 5 "SELECT FullPath FROM glob(globs='/usr/**')" "find /usr"
  report glob 1.0 "glob(/usr/**) FullPath vs find /usr"
fi

if selected globstat; then
  run globstat 5 "SELECT FullPath, Size, Mtime FROM glob(globs='/usr/**')" "find /usr -printf '%p %s %T@\n'"
  report globstat 1.0 "glob(/usr/**) FullPath,Size,Mtime vs find -printf"
fi

if selected sha256 || selected md5; then
  big=/tmp/quarry-bench-1g.bin
  [ -f "$big" ] && [ "$(stat -c %s "$big")" -eq 1073741824 ] || head -c 1073741824 /dev/urandom > "$big"
  if selected sha256; then
    run sha256 3 "SELECT hash(path='$big', hashselect='SHA256') FROM scope()" "openssl dgst -sha256 $big"
    report sha256 1.1 "hash SHA256 of 1 GiB vs openssl dgst -sha256"
  fi
  if selected md5; then
    run md5 3 "SELECT hash(path='$big') FROM scope()" "md5sum $big"
    report md5 "-" "hash (MD5+SHA1+SHA256) of 1 GiB vs md5sum"
  fi
fi

if selected pslist; then
  run pslist 10 "SELECT * FROM pslist()" "ps -eo pid,ppid,user,rss,etimes,args"
  report pslist 1.0 "SELECT * FROM pslist() vs ps -eo …"
fi

if selected netstat; then
  run netstat 10 "SELECT * FROM netstat()" "ss -tunap"
  report netstat 1.5 "SELECT * FROM netstat() vs ss -tunap"
fi

if selected pslist100; then
  run pslist100 3 "SELECT * FROM foreach(row={ SELECT * FROM range(end=100) }, query={ SELECT * FROM pslist() })" \
    "for i in \$(seq 100); do ps -eo pid,ppid,user,rss,etimes,args; done"
  report pslist100 1.0 "100 x pslist() in one query vs 100 x ps -eo …"
fi

if selected netstat100; then
  run netstat100 3 "SELECT * FROM foreach(row={ SELECT * FROM range(end=100) }, query={ SELECT * FROM netstat() })" \
    "for i in \$(seq 100); do ss -tunap; done"
  report netstat100 1.5 "100 x netstat() in one query vs 100 x ss -tunap"
fi
