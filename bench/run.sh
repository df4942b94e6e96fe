#!/usr/bin/env bash
# Quarry benchmarks: each runs beside its peer in one hyperfine invocation and prints the ratio.
# Usage: bench/run.sh [name…]   (names: vfilter, groupcount; default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${QUARRY:-.build/release/quarry}
command -v hyperfine >/dev/null || { echo "hyperfine missing: apt-get install hyperfine" >&2; exit 1; }
[ -x "$Q" ] || swift build -c release --product quarry
mkdir -p bench/out
want() { [ $# -eq 0 ] || [[ " $* " == *" $1 "* ]]; }
names=("$@")
selected() { [ ${#names[@]} -eq 0 ] && return 0; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

ratio() { # ratio JSON: mean of command 1 / mean of command 2
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.3f" % (r[0]["mean"]/r[1]["mean"]))' "$1"
}
mean() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("%.4f" % r[int(sys.argv[2])]["mean"])' "$1" "$2"; }

if selected vfilter; then
  # vfilter's published figure: 426 ms for 10,000 rows (Go engine). Run 1M rows so start-up is noise.
  q="SELECT format(format='value %v', args=_value) AS Value FROM range(start=0, step=1, end=1000000) WHERE Value =~ '.' AND 1 = 1 AND _value > 10"
  hyperfine -N -w 3 -r 20 --export-json bench/out/vfilter.json "$Q query --format jsonl \"$q\" --log /dev/null" >/dev/null
  python3 -c "
import json
r = json.load(open('bench/out/vfilter.json'))['results'][0]
for label, s in (('mean', r['mean']), ('min', r['min'])):
    per10k = s / 100 * 1000
    print(f'vfilter query ({label} of {len(r[\"times\"])} runs): {s:.3f} s per 1M rows = {per10k:.2f} ms per 10k rows; vfilter published 426 ms -> {426/per10k:.0f}x faster')"
fi

if selected groupcount; then
  hyperfine -N -w 2 -r 15 --export-json bench/out/groupcount.json \
    "$Q query --format jsonl \"SELECT count() AS N FROM range(start=0, end=10000000) WHERE _value > 5000000 GROUP BY 1\"" \
    "sqlite3 :memory: \"select count(*) from generate_series(0,9999999) where value > 5000000\"" >/dev/null
  echo "count over 10M rows: quarry $(mean bench/out/groupcount.json 0) s, sqlite3 $(mean bench/out/groupcount.json 1) s, ratio $(ratio bench/out/groupcount.json)x"
  /usr/bin/time -f "quarry max RSS: %M KB" $Q query --format jsonl "SELECT count() AS N FROM range(start=0, end=10000000) WHERE _value > 5000000 GROUP BY 1" >/dev/null
fi

if selected instructions; then
  # Instruction counts (callgrind) are repeatable whatever else the machine does.
  command -v valgrind >/dev/null || { echo "valgrind missing" >&2; exit 1; }
  q="SELECT format(format='value %v', args=_value) AS Value FROM range(start=0, step=1, end=100000) WHERE Value =~ '.' AND 1 = 1 AND _value > 10"
  # valgrind 3.19 cannot read some DWARF that swiftc emits: count instructions on a stripped copy.
  strip -g -o bench/out/quarry-stripped $Q
  Q=bench/out/quarry-stripped
  base=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $Q query --format jsonl "SELECT 1 FROM scope()" 2>&1 >/dev/null | awk '/refs:/ {gsub(",","",$4); print $4}')
  full=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $Q query --format jsonl "$q" 2>&1 >/dev/null | awk '/refs:/ {gsub(",","",$4); print $4}')
  python3 -c "print('vfilter query: %.0f instructions per row (callgrind, start-up subtracted)' % (($full - $base) / 100000))"
fi

if selected yara; then
  # yara() over every file under /usr/bin against the yara CLI scanning the same tree.
  rule=bench/out/bench.yar
  printf 'rule Bench { strings: $a = "QUARRY-NEVER-THERE" $b = { 7F 45 4C 46 02 01 01 00 00 00 00 00 00 00 00 00 03 00 3E 00 } condition: any of them }\n' > $rule
  hyperfine -N -w 1 -r 5 --export-json bench/out/yara.json \
    "$Q query --format jsonl \"SELECT FileName FROM yara(rules=read_file(filename='$rule'), files={ SELECT OSPath FROM glob(globs='/usr/bin/*', nosymlink=TRUE) WHERE NOT IsDir AND NOT IsLink }, number=1)\" --log /dev/null" \
    "yara -r -N $rule /usr/bin" >/dev/null
  echo "yara over /usr/bin: quarry $(mean bench/out/yara.json 0) s, yara CLI $(mean bench/out/yara.json 1) s, ratio $(ratio bench/out/yara.json)x"
fi
