#!/usr/bin/env bash
# `ragward callers` and `ragward serve`: a caller token shown once, the server
# on a free loopback port (and on a unix socket), /healthz without a token, a
# search with one, 401 without, a foreign Host refused, a non-loopback address
# refused, SIGHUP keeps serving, SIGTERM exits 0 and removes the socket.
# HTTP is spoken with bash's /dev/tcp: no curl needed.
source "$(dirname "$0")/lib.sh"

rw serve --help >/dev/null 2>&1 && rw callers add --help >/dev/null 2>&1 ||
	fail "'serve' / 'callers' are not registered: add cli_cmds_serve and cli_cmds_callers to groups[] in cli/main.c"

H=$(init_home)
D=$E2E_DIR/corpus
RULES=$E2E_DIR/rules
mkdir -p "$D" "$RULES"
ignore_previous_pack "$RULES" e2e-serve
cat >"$D/keys.md" <<'EOF2'
# Key management

## Rotation

Run the rotate command to create a new signing key. The old key is retired and
its public key stays available, so old signatures still verify.
EOF2

SID=$(request_id "$H" docs "$D" --kind file --by alice)
expect_exit 0 rw --home "$H" sources approve "$SID" --by bob
expect_json 0 rw --home "$H" ingest --all --rules "$RULES" --by carol --json

# ---- callers ---------------------------------------------------------------------------
step "callers add prints a token once; list never shows it"
expect_json 0 rw --home "$H" callers add agent --labels ops --json
json_keys "$OUT" . "id name labels state created_at revoked_at token"
json_true "$OUT" '.token | test("^rwd_[0-9a-f]{64}$")'
json_eq "$OUT" '.labels[0]' ops
TOKEN=$(jq -r .token "$OUT")
expect_exit 0 rw --home "$H" callers add other
matches "$OUT" '^rwd_[0-9a-f]{64}$'
expect_json 0 rw --home "$H" callers list --json
json_eq "$OUT" '.callers | length' 2
lacks "$OUT" "$TOKEN"
lacks "$OUT" "rwd_"
[ "$(sqlite3 "$H/store.db" "SELECT count(*) FROM callers WHERE token_sha256 = x'$(printf '%s' "$TOKEN" | sha256sum | cut -d' ' -f1)'")" = 1 ] ||
	fail "the token's SHA-256 is not what the store keeps"
expect_exit 64 rw --home "$H" callers add 'bad name'
expect_exit 1 rw --home "$H" callers add agent
expect_json 0 rw --home "$H" callers revoke other --json
json_eq "$OUT" '.state' revoked
expect_exit 1 rw --home "$H" callers revoke other
expect_json 0 rw --home "$H" audit log --json
contains "$OUT" caller.add
contains "$OUT" caller.revoke

# ---- binding refusals ----------------------------------------------------------------------
step "serve refuses a non-loopback address without --allow-remote"
expect_exit 1 rw --home "$H" serve --listen 0.0.0.0:0
contains "$ERR" "--allow-remote"
expect_exit 64 rw --home "$H" serve --listen nonsense

step "serve on a free port; /healthz answers"
serve_start "$H" serve
eq "$(http "$PORT" GET /healthz)" 200 "healthz"
eq "$(body)" '{"ok":true}' "healthz body"

step "search needs a token; with one it returns citation-tagged results"
eq "$(http "$PORT" POST /v1/search "" '{"query":"rotate signing key"}')" 401 "no token"
eq "$(http "$PORT" POST /v1/search "rwd_nope" '{"query":"rotate signing key"}')" 401 "wrong token"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"rotate signing key","k":3}')" 200 "search"
body >"$E2E_DIR/search.json"
json_true "$E2E_DIR/search.json" '.results | length >= 1'
json_eq "$E2E_DIR/search.json" '.results[0].citation.tag' '[1]'
json_eq "$E2E_DIR/search.json" '.results[0].integrity.verified' true
grep -q '"caller":"agent"' "$H/traces.jsonl" || fail "the trace does not name the caller"
lacks "$E2E_DIR/serve.err" "$TOKEN"
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"x","query":"y"}')" 400 "duplicate key"
body | grep -q 'duplicate key' || fail "no specific reason for a duplicate key"
eq "$(http "$PORT" GET /healthz "" "" "evil.example:$PORT")" 403 "foreign Host"
grep -qi '^access-control-' "$E2E_DIR/resp" && fail "a CORS header was sent"
eq "$(http "$PORT" GET /v1/keys "$TOKEN")" 200 "keys"
eq "$(http "$PORT" GET /metrics "$TOKEN")" 200 "metrics"
grep -q 'ragward_http_requests_total{endpoint="search",status="200"}' "$E2E_DIR/resp" || fail "metrics lack the search count"

step "SIGHUP reopens the store; a revoked source is gone at once"
kill -HUP "$PID"
sleep 0.2
eq "$(http "$PORT" GET /healthz)" 200 "healthz after SIGHUP"
expect_exit 0 rw --home "$H" sources revoke "$SID" --by bob
eq "$(http "$PORT" POST /v1/search "$TOKEN" '{"query":"rotate signing key"}')" 200 "search after revoke"
body | jq -e '.results | length == 0' >/dev/null || fail "a revoked source's chunks were served"

step "SIGTERM: graceful stop, exit 0"
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
eq "$rc" 0 "serve's exit code after SIGTERM"

step "serve on a unix socket (0660), removed on exit"
SOCK=$E2E_DIR/sock/ragward.sock
mkdir -m 0750 "$E2E_DIR/sock"
"$RAGWARD_BIN" --home "$H" serve --unix "$SOCK" >"$E2E_DIR/serve2.out" 2>"$E2E_DIR/serve2.err" &
PID=$!
e2e_on_exit "kill $PID"
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { cat "$E2E_DIR/serve2.err" >&2; fail "no socket at $SOCK"; }
mode_is "$SOCK" 660
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
eq "$rc" 0 "serve --unix exit code"
[ ! -e "$SOCK" ] || fail "the socket was left behind"

done_ok
