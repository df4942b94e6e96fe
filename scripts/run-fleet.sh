#!/usr/bin/env bash
# A local fleet demo: one server, three agents (separate state folders), a hunt and its results.
# Everything runs on loopback under ./fleet-demo and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=${QUARRY:-.build/release/quarry}
DEMO=${DEMO_DIR:-fleet-demo}
PORT=${FLEET_PORT:-8443}
rm -rf "$DEMO"
mkdir -p "$DEMO"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "quarry config generate --server-url https://127.0.0.1:$PORT --dir $DEMO/server"
$Q config generate --server-url "https://127.0.0.1:$PORT" --dir "$DEMO/server"
$Q config client --server-config "$DEMO/server/server.yaml" > "$DEMO/client.yaml"
API="--api-config $DEMO/server/api.yaml"

step "quarry server (log: $DEMO/server.log)"
$Q server --config "$DEMO/server/server.yaml" > "$DEMO/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "listening on" "$DEMO/server.log" && break; sleep 0.1; done

step "three agents: quarry client --state-dir $DEMO/agent-N"
for n in 1 2 3; do
  $Q client --config "$DEMO/client.yaml" --state-dir "$DEMO/agent-$n" > "$DEMO/agent-$n.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 100); do
  [ "$($Q clients list $API --format jsonl | grep -c '"Connected":true.*"OS":"linux"\|"OS":"linux".*"Connected":true' || true)" -ge 3 ] && break
  sleep 0.2
done
$Q clients list $API --format table

step "label one agent and hunt Linux.Sys.Pslist on every Linux client"
first=$(cat "$DEMO/agent-1/client_id")
$Q clients label "$first" --add demo $API
hunt=$($Q hunt create Linux.Sys.Pslist --os linux --description "demo: who is running" $API)
echo "hunt $hunt"
$Q hunt wait "$hunt" --clients 3 --timeout 60 $API
$Q hunt show "$hunt" $API --format table

step "server-side VQL over the hunt's rows"
$Q query --server $API --format table \
  "SELECT ClientId, count() AS Processes, max(item=RSS) AS LargestRSS FROM hunt_results(hunt_id='$hunt') GROUP BY ClientId"

step "a scheduled hunt (every 5 s) on the labelled agent, and its differential results"
watched="$DEMO/watched"; mkdir -p "$watched"; touch "$watched/before"
sched=$($Q hunt create Linux.Search.FileFinder --args "SearchFilesGlob=$PWD/$watched/*" --label demo --schedule "@every 5s" $API)
$Q hunt wait "$sched" --clients 1 --round 1 --timeout 60 $API
touch "$watched/after"
$Q hunt wait "$sched" --clients 1 --round 2 --timeout 60 $API
$Q hunt diff "$sched" --round 2 $API --format table
$Q hunt stop "$sched" $API

step "metrics"
command -v curl >/dev/null && curl -sk "https://127.0.0.1:$PORT/metrics" | grep -E '^quarry_(connected_clients|rows_ingested_total|batches_ingested_total|hunt_clients_finished) ' || true
