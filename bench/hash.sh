#!/usr/bin/env bash
# hash() beside the coreutils/openssl tools, interleaved (bench/pair.py).
# Usage: bench/hash.sh [RUNS] [name…]   (names: md5, sha256, usrlib, usrlib2; default all)
#   md5      all three digests of 1 GiB in one read vs md5sum alone           (goal 1.05x)
#   sha256   SHA256 of 1 GiB vs openssl dgst -sha256                          (goal 1.1x)
#   usrlib   SHA256 of every regular file under /usr/lib, one row at a time,
#            vs find /usr/lib -type f -exec sha256sum {} +
#   usrlib2  the same with the rows hashed on 2 threads (foreach(workers=2); rows unordered)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${QUARRY:-.build/release/quarry}
RUNS=${1:-5}
shift || true
names=("$@")
selected() { [ ${#names[@]} -eq 0 ] && return 0; for n in "${names[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }
big=/tmp/quarry-bench-1g.bin
if selected md5 || selected sha256; then
  [ -f "$big" ] && [ "$(stat -c %s "$big")" -eq 1073741824 ] || head -c 1073741824 /dev/urandom > "$big"
fi
if selected md5; then
  bench/pair.py md5 "$RUNS" "$Q query --format jsonl \"SELECT hash(path='$big') FROM scope()\"" "md5sum $big" 1.05
fi
if selected sha256; then
  bench/pair.py sha256 "$RUNS" "$Q query --format jsonl \"SELECT hash(path='$big', hashselect='SHA256') FROM scope()\"" \
    "openssl dgst -sha256 $big" 1.1
fi
files="SELECT OSPath FROM glob(globs='/usr/lib/**') WHERE NOT IsDir AND NOT IsLink"
if selected usrlib; then
  bench/pair.py usrlib "$RUNS" \
    "$Q query --format jsonl \"SELECT OSPath, hash(path=OSPath, hashselect='SHA256').SHA256 AS H FROM glob(globs='/usr/lib/**') WHERE NOT IsDir AND NOT IsLink\"" \
    "find /usr/lib -type f -exec sha256sum {} +" 0.5
fi
if selected usrlib2; then
  bench/pair.py usrlib2 "$RUNS" \
    "$Q query --format jsonl \"SELECT * FROM foreach(row={$files}, query={SELECT OSPath, hash(path=OSPath, hashselect='SHA256').SHA256 AS H FROM scope()}, workers=2)\"" \
    "find /usr/lib -type f -exec sha256sum {} +" 0.5
fi
