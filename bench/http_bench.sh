#!/usr/bin/env bash
# HTTP layer figures (not run in CI): wrk against `ragward serve` on loopback,
# compared with the machine's limit measured in the same run: a trivial static
# response from nginx when it is installed, else the server's own /healthz
# (the cheapest route through the same stack; then only search vs healthz is
# compared). performance.md section 7's goal: /healthz at >= 0.5x a trivial
# epoll server on the same machine.
#
# usage: bench/http_bench.sh [RAGWARD_BIN] [DURATION_S] [CONNECTIONS]
# Needs wrk (Debian: apt-get install wrk). Builds a scratch store with a few
# hundred chunks from docs/*.md; no network.
set -euo pipefail

BIN=${1:-build/ragward}
DUR=${2:-8}
CONN=${3:-10}
SRC=$(cd "$(dirname "$0")/.." && pwd)

command -v wrk >/dev/null || { echo "wrk is not installed: sudo apt-get install wrk" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is not installed: sudo apt-get install jq" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no ragward binary at '$BIN' (pass its path)" >&2; exit 2; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

T=$(mktemp -d)
SPID=
NPID=
cleanup() {
	[ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
	[ -n "$NPID" ] && kill "$NPID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

H=$T/home
mkdir -p "$T/corpus" "$T/rules"
cp "$SRC"/docs/*.md "$T/corpus/"
cat >"$T/rules/10-bench.yaml" <<'EOF2'
pack: bench
version: 1
rules:
  - id: bench.ignore-previous
    title: Ignore previous instructions
    category: instruction-override
    severity: high
    action: quarantine
    patterns:
      - 'ignore\s+(?:all\s+)?previous\s+instructions'
    examples:
      match: ["Ignore all previous instructions now"]
      no_match: ["Do not ignore the manual"]
EOF2
"$BIN" --home "$H" init --by admin >/dev/null 2>&1
SID=$("$BIN" --home "$H" sources request docs "$T/corpus" --kind file --by alice 2>/dev/null)
"$BIN" --home "$H" sources approve "$SID" --by bob >/dev/null 2>&1
"$BIN" --home "$H" ingest --all --rules "$T/rules" --by carol >/dev/null 2>&1
TOKEN=$("$BIN" --home "$H" callers add bench 2>/dev/null)

"$BIN" --home "$H" serve --listen 127.0.0.1:0 --threads 2 >"$T/serve.out" 2>/dev/null &
SPID=$!
for _ in $(seq 1 100); do [ -s "$T/serve.out" ] && break; sleep 0.1; done
URL=$(head -n1 "$T/serve.out")
[ -n "$URL" ] || { echo "serve did not start" >&2; exit 1; }

cat >"$T/search.lua" <<EOF2
wrk.method = "POST"
wrk.body = '{"query":"how do I rotate the signing key","k":5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF2

rps() { sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p'; }
run() { wrk -t1 -c"$CONN" -d"${DUR}s" --latency "$@" 2>&1; }

echo "ragward serve at $URL, wrk -t1 -c$CONN -d${DUR}s"
HZ=$(run "$URL/healthz" | tee "$T/healthz.txt" | rps)
SE=$(run -s "$T/search.lua" "$URL/v1/search" | tee "$T/search.txt" | rps)
grep -E '^\s+50%|^\s+99%' "$T/search.txt" | sed 's/^/  search latency /'

BASE=
if command -v nginx >/dev/null; then
	mkdir -p "$T/nginx/logs" "$T/www"
	head -c 3848 /dev/zero | tr '\0' 'x' >"$T/www/static.json"
	cat >"$T/nginx/nginx.conf" <<EOF2
daemon off; worker_processes 1; pid $T/nginx/nginx.pid; error_log /dev/null;
events { worker_connections 1024; }
http { access_log off; open_file_cache max=10; sendfile off;
  server { listen 127.0.0.1:18499; root $T/www; } }
EOF2
	nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" &
	NPID=$!
	sleep 0.5
	BASE=$(run "http://127.0.0.1:18499/static.json" | rps)
fi

printf '\n%-28s %12s\n' "target" "req/s"
printf '%-28s %12s\n' "ragward /healthz" "$HZ" "ragward POST /v1/search" "$SE"
if [ -n "$BASE" ]; then
	printf '%-28s %12s\n' "nginx static 3.8 KB" "$BASE"
	awk -v a="$HZ" -v b="$BASE" 'BEGIN { printf "healthz / nginx ratio: %.2f (goal >= 0.5)\n", a / b }'
else
	echo "(nginx not installed: no machine baseline; install nginx for the ratio)"
fi
awk -v a="$SE" -v b="$HZ" 'BEGIN { printf "search / healthz ratio: %.2f\n", a / b }'
