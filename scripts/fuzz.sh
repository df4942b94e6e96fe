#!/bin/bash
# Runs Quarry's libFuzzer harnesses (built by `make fuzz` into Fuzz/.build/release) one after the
# other, each for FUZZ_SECONDS, and prints executions and findings per harness.
#
#   scripts/fuzz.sh [HARNESS...]        (default: every harness)
#
# Seeds are made at run time in .build/fuzz/seeds/HARNESS: the harness's own samples (made by
# Quarry's encoders), the conformance material in ../shared when it is present (never copied into
# the repository), and small files made here with the system's tools (zip, tar, mkfs.ext4,
# openssl, Python's plistlib and plyvel). New inputs libFuzzer finds accumulate in
# .build/fuzz/corpus/HARNESS across runs; crashes are written to .build/fuzz/crashes/.
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
BIN=Fuzz/.build/release
OUT=.build/fuzz
SHARED=../shared/conformance
FILES=$SHARED/velociraptor-testcases/files/files
ALL="fuzz-vql fuzz-artifact-yaml fuzz-agent-message fuzz-server-message fuzz-container-zip fuzz-zip-accessor fuzz-archives
     fuzz-ext4 fuzz-parse-binary fuzz-pe fuzz-x509 fuzz-plist fuzz-leveldb fuzz-journald fuzz-auditd fuzz-utmp fuzz-json
     fuzz-sigma fuzz-remap fuzz-crypto-file fuzz-index"
HARNESSES=${*:-$ALL}
# Inputs over this size are cut; seeds over it are left out (they would slow every execution).
MAX_LEN=1048576

mkdir -p "$OUT/seeds" "$OUT/corpus" "$OUT/crashes" "$OUT/logs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Copies FILE into the seed folder of HARNESS when it exists and is small enough.
seed() {
    local harness=$1 file=$2
    [ -f "$file" ] || return 0
    [ "$(stat -c %s "$file")" -le $MAX_LEN ] || return 0
    cp "$file" "$OUT/seeds/$harness/$(basename "$file" | tr -c 'A-Za-z0-9._\n-' _)-$(md5sum < "$file" | cut -c1-8)"
}

make_seeds() {
    local h=$1 dir=$OUT/seeds/$1 f
    rm -rf "$dir"
    mkdir -p "$dir"
    "$BIN/$h" --write-samples "$dir" || return 1
    case $h in
    fuzz-vql)
        [ -d "$SHARED" ] && python3 - "$SHARED" "$dir" <<'EOF'
import json, sys, os, hashlib
shared, out = sys.argv[1], sys.argv[2]
texts = []
vf = os.path.join(shared, "vfilter/cases.json")
if os.path.exists(vf):
    for case in json.load(open(vf)):
        texts += [s["vql"] for s in case.get("statements", []) if "vql" in s]
tc = os.path.join(shared, "velociraptor-testcases/cases.json")
if os.path.exists(tc):
    texts += [c["query"] for c in json.load(open(tc))]
for t in texts:
    data = t.encode()
    open(os.path.join(out, "q-" + hashlib.md5(data).hexdigest()[:10]), "wb").write(data)
EOF
        ;;
    fuzz-artifact-yaml)
        for f in artifacts/*/*.yaml artifacts/*.yaml "$SHARED"/velociraptor-artifacts/*/*.yaml "$SHARED"/velociraptor-artifacts/*/*/*.yaml; do seed $h "$f"; done
        ;;
    fuzz-container-zip | fuzz-zip-accessor)
        for f in "$FILES"/*.zip; do seed $h "$f"; done
        (cd "$scratch" && rm -rf z && mkdir z && echo hello > z/a.txt && head -c 5000 /dev/zero > z/b.bin &&
            zip -q -r stored.zip z -0 && zip -q -r deflated.zip z && zip -q -r -fz zip64.zip z &&
            printf 'x' | zip -q -P secret encrypted.zip - && zip -q nested.zip stored.zip deflated.zip) 2>/dev/null
        for f in "$scratch"/*.zip; do seed $h "$f"; done
        ;;
    fuzz-archives)
        for f in "$FILES"/*.gz "$FILES"/*.bz2 "$FILES"/*.tgz; do seed $h "$f"; done
        (cd "$scratch" && rm -rf t && mkdir -p t/d && echo one > t/d/a && ln -sf a t/d/l && printf 'two\n' > t/b &&
            tar -cf t.tar t && gzip -c t.tar > t.tgz && bzip2 -c t/b > b.bz2 && gzip -c t/b > b.gz) 2>/dev/null
        for f in "$scratch"/t.tar "$scratch"/t.tgz "$scratch"/b.bz2 "$scratch"/b.gz; do seed $h "$f"; done
        ;;
    fuzz-ext4)
        [ -f "$FILES/ext4_tests.zip" ] && unzip -o -q "$FILES/ext4_tests.zip" -d "$scratch/ext4" 2>/dev/null
        for f in "$scratch"/ext4/*.ext4; do seed $h "$f"; done
        (cd "$scratch" && rm -rf e && mkdir -p e/dir/sub && echo hi > e/dir/sub/f && head -c 20000 /dev/urandom > e/big &&
            ln -s dir/sub/f e/link && mkfs.ext4 -q -F -b 1024 -N 32 -d e small.ext4 256 &&
            mkfs.ext4 -q -F -b 1024 -N 32 -O ^extent -d e noextent.ext4 256) 2>/dev/null
        for f in "$scratch"/small.ext4 "$scratch"/noextent.ext4; do seed $h "$f"; done
        ;;
    fuzz-pe)
        seed $h "$FILES/3DBuilder.ResourceResolver.exe"
        ;;
    fuzz-x509)
        local n=0
        for f in /etc/ssl/certs/*.pem; do
            [ $n -lt 8 ] || break
            n=$((n + 1))
            seed $h "$f"
            openssl x509 -in "$f" -outform DER -out "$scratch/cert$n.der" 2>/dev/null && seed $h "$scratch/cert$n.der"
        done
        (cd "$scratch" && openssl crl2pkcs7 -nocrl -certfile /etc/ssl/certs/ca-certificates.crt -outform DER -out chain.p7b &&
            head -c 60000 chain.p7b > /dev/null) 2>/dev/null
        [ -f "$scratch/chain.p7b" ] && [ "$(stat -c %s "$scratch/chain.p7b")" -le $MAX_LEN ] && seed $h "$scratch/chain.p7b"
        ;;
    fuzz-plist)
        python3 - "$dir" <<'EOF'
import plistlib, sys, os, datetime
value = {"Label": "com.example.agent", "ProgramArguments": ["/bin/sh", "-c", "id"], "RunAtLoad": True,
         "Interval": 3600, "Ratio": 0.5, "When": datetime.datetime(2024, 1, 2, 3, 4, 5), "Blob": b"\x00\x01\xff",
         "Nested": {"a": [1, -2, 2**40, {"b": None if False else "x"}]}}
open(os.path.join(sys.argv[1], "binary.plist"), "wb").write(plistlib.dumps(value, fmt=plistlib.FMT_BINARY))
open(os.path.join(sys.argv[1], "xml.plist"), "wb").write(plistlib.dumps(value, fmt=plistlib.FMT_XML))
EOF
        ;;
    fuzz-leveldb)
        [ -f "$FILES/Session Storage.zip" ] && unzip -o -q "$FILES/Session Storage.zip" -d "$scratch/ls" 2>/dev/null
        for f in "$scratch"/ls/*/*.log "$scratch"/ls/*/*.ldb; do seed $h "$f"; done
        python3 - "$scratch/db" <<'EOF' 2>/dev/null
import plyvel, sys
db = plyvel.DB(sys.argv[1], create_if_missing=True)
for i in range(200):
    db.put(b"key-%04d" % i, b"value %d " % i * (i % 7 + 1))
db.delete(b"key-0003")
db.compact_range()
for i in range(20):
    db.put(b"late-%d" % i, b"v")
db.close()
EOF
        for f in "$scratch"/db/*.log "$scratch"/db/*.ldb; do seed $h "$f"; done
        ;;
    fuzz-journald)
        [ -f "$FILES/system.journal.zip" ] && unzip -o -q "$FILES/system.journal.zip" -d "$scratch/j" 2>/dev/null
        for f in "$scratch"/j/*.journal; do seed $h "$f"; done
        ;;
    fuzz-auditd)
        for f in /var/log/audit/audit.log; do [ -r "$f" ] && head -c 200000 "$f" > "$scratch/audit.log" && seed $h "$scratch/audit.log"; done
        ;;
    fuzz-utmp)
        for f in /var/log/wtmp /var/run/utmp /var/log/btmp; do [ -r "$f" ] && [ -s "$f" ] && seed $h "$f"; done
        ;;
    fuzz-json)
        seed $h "$FILES/debian/snaps.json"
        [ -f "$SHARED/velociraptor-testcases/cases.json" ] && python3 - "$SHARED/velociraptor-testcases/cases.json" "$dir" <<'EOF'
import json, sys, os, hashlib
for case in json.load(open(sys.argv[1])):
    data = json.dumps(case.get("expected")).encode()
    if len(data) < 20000:
        open(os.path.join(sys.argv[2], "rows-" + hashlib.md5(data).hexdigest()[:10]), "wb").write(data)
EOF
        ;;
    esac
    return 0
}

summary=$OUT/summary.txt
printf '%-22s %8s %12s %10s %8s %s\n' harness seconds executions exec/s seeds result | tee "$summary"
status=0
for h in $HARNESSES; do
    if [ ! -x "$BIN/$h" ]; then echo "$h: not built ($BIN/$h); run make fuzz" >&2; status=1; continue; fi
    make_seeds "$h"
    mkdir -p "$OUT/corpus/$h"
    log=$OUT/logs/$h.log
    # Leak checks are off by default (FUZZ_DETECT_LEAKS=1 turns them on): they stop a harness at
    # its first report, and fuzz-parse-binary's first report (allocations while compiling a
    # profile, docs/fuzzing.md) would end every run after three inputs. Growth is still bounded
    # by -rss_limit_mb.
    "$BIN/$h" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=3072 -max_len=$MAX_LEN -print_final_stats=1 \
        -detect_leaks="${FUZZ_DETECT_LEAKS:-0}" \
        -artifact_prefix="$OUT/crashes/$h-" "$OUT/corpus/$h" "$OUT/seeds/$h" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    result=clean
    if [ $rc -ne 0 ]; then
        result="CRASH rc=$rc: $(ls -t "$OUT"/crashes/"$h"-* 2>/dev/null | head -n 1)"
        status=1
    fi
    printf '%-22s %8s %12s %10s %8s %s\n' "$h" "$SECONDS_EACH" "${runs:-?}" "${rate:-?}" "$(ls "$OUT/seeds/$h" | wc -l)" "$result" | tee -a "$summary"
done
exit $status
