#!/usr/bin/env bash
# T49 while running: `ragward serve` refuses to serve a store that was rolled
# back or truncated under it, not only at start-up.
#  (a) a server answers from a good store;
#  (b) store.db is replaced with an older copy (taken before a later ingest
#      and a revocation): the next request, and after SIGHUP every request,
#      gets 503, /healthz too, and the old copy's chunks are not returned;
#      also when the anchor is rolled back with it (the server remembers);
#  (c) the audit log's tail is truncated in place with the sqlite3 CLI under
#      a second server: the next request gets 503;
#  (d) an audit event is edited (the log keeps its size): after SIGHUP, or
#      at once when the edit comes as a replaced file, requests get 503;
#  (e) writes, SIGHUPs and requests at once never cause a refusal;
#  and a restart, and `ragward mcp`, refuse the tampered stores at start-up;
#  `ragward mcp` also stops when the log shrinks under its open session.
# HTTP is spoken with bash's /dev/tcp, as in test_serve.sh.
source "$(dirname "$0")/lib.sh"

PIDS=()
e2e_on_exit 'for p in "${PIDS[@]}"; do kill "$p"; done'

# serve_stop NAME: SIGTERM, exit 0, and no sanitizer report in its log.
serve_stop() {
	local rc=0
	kill -TERM "$PID"
	wait "$PID" || rc=$?
	eq "$rc" 0 "serve's exit code after SIGTERM"
	ERR=$E2E_DIR/$1.err e2e_sanitizer_check "serve ($1)"
}

# refused PORT TOKEN: every /v1 and /mcp endpoint, with the token or
# without, and /healthz answer 503 with the refusal; no results leak.
REFUSAL='store failed its audit check; refusing to serve'
refused() {
	local port=$1 token=$2
	eq "$(http "$port" POST /v1/search "$token" '{"query":"rotate signing key","k":5}')" 503 "search while refusing"
	body >"$E2E_DIR/refused.json"
	json_eq "$E2E_DIR/refused.json" . "{\"error\":{\"code\":\"unavailable\",\"message\":\"$REFUSAL\"}}"
	lacks "$E2E_DIR/resp" "signing key"
	lacks "$E2E_DIR/resp" "results"
	eq "$(http "$port" POST /v1/search "$token" '{"query":"quarterly kiwi ledger"}')" 503 "search for the newer document"
	lacks "$E2E_DIR/resp" kiwi
	eq "$(http "$port" POST /v1/search "" '{"query":"rotate signing key"}')" 503 "search without a token"
	eq "$(http "$port" GET /v1/chunks/1 "$token")" 503 "chunk by id while refusing"
	lacks "$E2E_DIR/resp" "signing key"
	eq "$(http "$port" GET /v1/keys "$token")" 503 "keys while refusing"
	eq "$(http "$port" POST /mcp "$token" '{"jsonrpc":"2.0","id":1,"method":"ping"}')" 503 "/mcp while refusing"
	eq "$(http "$port" GET /healthz)" 503 "healthz while refusing"
	body >"$E2E_DIR/health.json"
	json_eq "$E2E_DIR/health.json" . "{\"ok\":false,\"error\":\"$REFUSAL\"}"
}

# ---- a store with history ----------------------------------------------------------------
H=$(init_home)
D=$E2E_DIR/corpus
D2=$E2E_DIR/corpus2
RULES=$E2E_DIR/rules
mkdir -p "$D" "$D2" "$RULES"
ignore_previous_pack "$RULES" e2e-serve-refuse
cat >"$D/keys.md" <<'EOF2'
# Key management

## Rotation

Run the rotate command to create a new signing key. The old key is retired and
its public key stays available, so old signatures still verify.
EOF2
cat >"$D2/ledger.md" <<'EOF2'
# Finance

## Ledger

The quarterly kiwi ledger is closed on the fifth working day.
EOF2

SID=$(request_id "$H" docs "$D" --kind file --by alice)
expect_exit 0 rw --home "$H" sources approve "$SID" --by bob
expect_json 0 rw --home "$H" ingest --all --rules "$RULES" --by carol --json
expect_json 0 rw --home "$H" callers add agent --json
TOKEN=$(jq -r .token "$OUT")

step "an older copy of the store: the docs source approved, no ledger yet"
OLD=$E2E_DIR/old
snapshot_home "$H" "$OLD"
OLD_EVENTS=$(sql "$OLD" 'SELECT count(*) FROM audit_events')

step "later: a second source approved and ingested, the first one revoked"
SID2=$(request_id "$H" finance "$D2" --kind file --by alice)
expect_exit 0 rw --home "$H" sources approve "$SID2" --by bob
expect_json 0 rw --home "$H" ingest --all --rules "$RULES" --by carol --json
expect_exit 0 rw --home "$H" sources revoke "$SID" --by bob
expect_exit 0 rw --home "$H" audit verify
N=$(sql "$H" 'SELECT count(*) FROM audit_events')
[ "$N" -gt "$OLD_EVENTS" ] || fail "the later changes added no audit events ($N <= $OLD_EVENTS)"
GOOD=$E2E_DIR/good
snapshot_home "$H" "$GOOD"

# ---- (a) serving a good store -----------------------------------------------------------------
step "(a) serve answers from the good store; /metrics shows ragward_refusing 0"
serve_start "$H" serve1
eq "$(http "$PORT" GET /healthz)" 200 "healthz"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"rotate signing key","k":5}')" 200 "search for the revoked source"
body | jq -e '.results | length == 0' >/dev/null || fail "the revoked source's chunks were served"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search for the ledger"
body | jq -e '.results | length >= 1' >/dev/null || fail "the ledger was not found"
eq "$(http "$PORT" GET /metrics "$TOKEN")" 200 "metrics"
contains "$E2E_DIR/resp" "ragward_refusing 0"
contains "$E2E_DIR/resp" "ragward_store_checks_total 1"
# the old copy by itself still answers the revoked source: the rollback matters
expect_json 0 rw --home "$OLD" query "rotate signing key" --json
json_true "$OUT" '.results | length >= 1' "the old copy does not hold the revoked source's chunks"

# ---- (b) rollback by replacing store.db ---------------------------------------------------------
step "(b) store.db replaced with the older copy while serving: the next request is refused"
db_settle "$H"
cp "$OLD/store.db" "$H/store.db.restore"
rm -f "$H/store.db-wal" "$H/store.db-shm"
mv "$H/store.db.restore" "$H/store.db"
# the replaced file alone would serve the revoked source again
[ "$(sql "$H" "SELECT state FROM sources WHERE id = $SID")" = approved ] || fail "the restore did not undo the revocation"
refused "$PORT" "$TOKEN"
contains "$E2E_DIR/serve1.err" "store check: anchor"
contains "$E2E_DIR/serve1.err" "refusing to serve"
matches "$E2E_DIR/serve1.err" 'security: .*(shrank|inconsistent)'

step "(b) SIGHUP does not lift the refusal"
kill -HUP "$PID"
sleep 0.3
refused "$PORT" "$TOKEN"

step "(b) /metrics: ragward_refusing 1, the failed check and the refused requests counted"
eq "$(http "$PORT" GET /metrics "$TOKEN")" 200 "metrics while refusing"
contains "$E2E_DIR/resp" "ragward_refusing 1"
contains "$E2E_DIR/resp" 'ragward_store_check_failures_total{check="store"} 1'
# two rounds of refused(), 7 refusals each
awk '$1 == "ragward_refused_requests_total" && $2 >= 14 { ok = 1 } END { exit !ok }' "$E2E_DIR/resp" ||
	fail "ragward_refused_requests_total does not count the refused requests: $(grep refused_requests "$E2E_DIR/resp")"
contains "$E2E_DIR/resp" 'ragward_http_requests_total{endpoint="search",status="503"}'
serve_stop serve1

step "(b) a restart on the rolled-back store refuses to start (exit 1)"
expect_exit 1 rw --home "$H" serve --listen 127.0.0.1:0
contains "$ERR" "refusing to serve"
matches "$ERR" '(shrank|inconsistent)'
is_empty "$OUT"
expect_exit 1 rw --home "$H" mcp
contains "$ERR" "refusing to serve"
is_empty "$OUT"

step "(b) store.db and anchor.checkpoint both rolled back: the new file passes its check, the server remembers more"
B2=$E2E_DIR/b2
snapshot_home "$GOOD" "$B2"
serve_start "$B2" serve1b
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search before the rollback"
cp "$OLD/store.db" "$B2/store.db.restore"
cp "$OLD/anchor.checkpoint" "$B2/anchor.checkpoint.restore"
rm -f "$B2/store.db-wal" "$B2/store.db-shm"
mv "$B2/anchor.checkpoint.restore" "$B2/anchor.checkpoint"
mv "$B2/store.db.restore" "$B2/store.db"
expect_exit 0 rw --home "$B2" audit verify # consistent by itself: only the server's memory tells
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"rotate signing key","k":5}')" 503 "search after the full rollback"
lacks "$E2E_DIR/resp" "signing key"
contains "$E2E_DIR/serve1b.err" "covers $OLD_EVENTS events, fewer than the $N this server has seen"
refused "$PORT" "$TOKEN"
serve_stop serve1b

# ---- (c) tail truncated in place ----------------------------------------------------------------
step "(c) a second server on a good copy; the audit log's tail is truncated in place under it"
C=$E2E_DIR/c
snapshot_home "$GOOD" "$C"
serve_start "$C" serve2
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search before the truncation"
body | jq -e '.results | length >= 1' >/dev/null || fail "the ledger was not found"
eq "$(http "$PORT" GET /healthz)" 200 "healthz before the truncation"
INODE=$(stat -c %i "$C/store.db")
sql "$C" "DROP TRIGGER audit_events_no_delete; DROP TRIGGER checkpoints_no_delete;
  DELETE FROM audit_events WHERE seq > $((N - 2));
  DELETE FROM checkpoints WHERE tree_size > $((N - 2));"
eq "$(stat -c %i "$C/store.db")" "$INODE" "store.db's inode (a truncation in place)"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 503 "search after the truncation"
lacks "$E2E_DIR/resp" kiwi
contains "$E2E_DIR/serve2.err" "refusing to serve"
matches "$E2E_DIR/serve2.err" "security: store check: the audit log's latest checkpoint covers $((N - 2)) events, fewer than the $N"
refused "$PORT" "$TOKEN"
eq "$(http "$PORT" GET /metrics "$TOKEN")" 200 "metrics while refusing"
contains "$E2E_DIR/resp" "ragward_refusing 1"
contains "$E2E_DIR/resp" 'ragward_store_check_failures_total{check="log_size"} 1'
serve_stop serve2

step "(c) a restart refuses the truncated store; so does ragward mcp"
expect_exit 1 rw --home "$C" serve --listen 127.0.0.1:0
contains "$ERR" "shrank"
expect_exit 1 rw --home "$C" mcp
contains "$ERR" "shrank"

step "(c) healthz alone sees a truncation too (no search needed)"
C2=$E2E_DIR/c2
snapshot_home "$GOOD" "$C2"
serve_start "$C2" serve3
eq "$(http "$PORT" GET /healthz)" 200 "healthz before the truncation"
sql "$C2" "DROP TRIGGER audit_events_no_delete; DROP TRIGGER checkpoints_no_delete;
  DELETE FROM audit_events WHERE seq > $((N - 1));
  DELETE FROM checkpoints WHERE tree_size > $((N - 1));"
eq "$(http "$PORT" GET /healthz)" 503 "healthz after the truncation"
json_eq <(body) . "{\"ok\":false,\"error\":\"$REFUSAL\"}"
serve_stop serve3

# ---- (d) an edited log of the same size: only the full check sees it ----------------------------
step "(d) an event edited in place (same size, same inode): SIGHUP re-runs the check, which refuses"
E=$E2E_DIR/e
snapshot_home "$GOOD" "$E"
serve_start "$E" serve4
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search before the edit"
sql "$E" "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'mallory' WHERE seq = 4;"
kill -HUP "$PID"
# the reload happens when serve's main thread takes the signal: wait for it
for _ in $(seq 1 100); do
	code=$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')
	[ "$code" = 200 ] || break
	sleep 0.1
done
eq "$code" 503 "search after the edit and SIGHUP"
lacks "$E2E_DIR/resp" kiwi
contains "$E2E_DIR/serve4.err" "store check: event 4"
refused "$PORT" "$TOKEN"
serve_stop serve4

step "(d) the same edit in a replacement file (new inode): the next request refuses, no SIGHUP"
F=$E2E_DIR/f
snapshot_home "$GOOD" "$F"
serve_start "$F" serve5
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search before the replacement"
cp "$F/store.db" "$E2E_DIR/edited.db"
sqlite3 -bail "$E2E_DIR/edited.db" "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'mallory' WHERE seq = 4;"
cp "$E2E_DIR/edited.db" "$F/store.db.new"
rm -f "$F/store.db-wal" "$F/store.db-shm"
mv "$F/store.db.new" "$F/store.db"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 503 "search after the replacement"
lacks "$E2E_DIR/resp" kiwi
contains "$E2E_DIR/serve5.err" "store check: event 4"
serve_stop serve5

# ---- (e) no false refusal under writes ---------------------------------------------------------
step "(e) governance changes, SIGHUPs and requests at once: never a refusal"
# Each SIGHUP checks the store while the writer commits and refreshes the
# anchor: a check that read an anchor newer than its snapshot of the log
# would see a log that shrank and refuse for good.
G=$E2E_DIR/g
snapshot_home "$GOOD" "$G"
serve_start "$G" serve6
(
	for i in $(seq 1 20); do
		id=$(rw --home "$G" sources request "x$i" "https://x$i.example.com/" --by alice 2>/dev/null)
		rw --home "$G" sources approve "$id" --by bob >/dev/null 2>&1
	done
) &
WPID=$!
PIDS+=("$WPID")
i=0
while kill -0 "$WPID" 2>/dev/null && [ "$i" -lt 2000 ]; do
	i=$((i + 1))
	kill -HUP "$PID"
	eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search $i during writes"
	eq "$(http "$PORT" GET /healthz)" 200 "healthz $i during writes"
done
wait "$WPID"
[ "$(sql "$G" 'SELECT count(*) FROM audit_events')" -eq $((N + 40)) ] || fail "the writer did not finish its changes"
kill -HUP "$PID"
sleep 0.3
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"quarterly kiwi ledger"}')" 200 "search after the writes"
eq "$(http "$PORT" GET /metrics "$TOKEN")" 200 "metrics after the writes"
contains "$E2E_DIR/resp" "ragward_refusing 0"
lacks "$E2E_DIR/serve6.err" "refusing"
serve_stop serve6

# ---- ragward mcp (stdio) -------------------------------------------------------------------
step "ragward mcp: a session on a good store stops (exit 1) when the log shrinks under it"
M=$E2E_DIR/m
snapshot_home "$GOOD" "$M"
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}'
SEARCH='{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"query":"quarterly kiwi ledger","k":3}}}'
mkfifo "$E2E_DIR/mcp.in"
"$RAGWARD_BIN" --home "$M" mcp <"$E2E_DIR/mcp.in" >"$E2E_DIR/mcp.out" 2>"$E2E_DIR/mcp.err" &
MPID=$!
PIDS+=("$MPID")
exec 4>"$E2E_DIR/mcp.in"
printf '%s\n%s\n%s\n' "$INIT" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$SEARCH" >&4
for _ in $(seq 1 100); do [ "$(grep -c . "$E2E_DIR/mcp.out")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c . "$E2E_DIR/mcp.out")" -eq 2 ] || { cat "$E2E_DIR/mcp.err" >&2; fail "mcp did not answer initialize and search"; }
contains "$E2E_DIR/mcp.out" kiwi
sql "$M" "DROP TRIGGER audit_events_no_delete; DROP TRIGGER checkpoints_no_delete;
  DELETE FROM audit_events WHERE seq > $((N - 2));
  DELETE FROM checkpoints WHERE tree_size > $((N - 2));"
printf '%s\n' "${SEARCH/\"id\":3/\"id\":4}" >&4 || true
exec 4>&-
rc=0
wait "$MPID" || rc=$?
eq "$rc" 1 "mcp's exit code after the log shrank"
eq "$(grep -c . "$E2E_DIR/mcp.out")" 2 "responses written (none after the truncation)"
contains "$E2E_DIR/mcp.err" "refusing to serve"
ERR=$E2E_DIR/mcp.err e2e_sanitizer_check "mcp"

step "the untouched copy still serves, and mcp starts on it"
expect_exit 0 rw --home "$GOOD" audit verify
printf '%s\n' "$INIT" >"$E2E_DIR/init.jsonl"
rw --home "$GOOD" mcp <"$E2E_DIR/init.jsonl" >"$E2E_DIR/mcp2.out" 2>"$E2E_DIR/mcp2.err" ||
	{ cat "$E2E_DIR/mcp2.err" >&2; fail "mcp on the good copy failed"; }
jq -e '.id == 1 and .result.protocolVersion' "$E2E_DIR/mcp2.out" >/dev/null || fail "mcp on the good copy: no initialize result"

done_ok
