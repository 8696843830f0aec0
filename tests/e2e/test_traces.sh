#!/usr/bin/env bash
# Retrieval traces: the "traces:" settings (garbage refused, a relative path
# under HOME, created 0600), `traces verify` on the hash chain (intact 0; an
# edited, deleted or reordered line 1; lines cut from the end found with
# --head; an unreadable file 2), a symlinked trace path refused by query and
# by serve at start, and the syslog-only sink writing no file.
source "$(dirname "$0")/lib.sh"

rw traces verify --help >/dev/null 2>&1 ||
	fail "'traces verify' is not registered: add cli_cmds_traces to groups[] in cli/main.c"

H=$(init_home)
D=$E2E_DIR/corpus
RULES=$E2E_DIR/rules
mkdir -p "$D" "$RULES"
ignore_previous_pack "$RULES" e2e-traces
printf '# Key management\n\nRun the rotate command to create a new signing key.\n' >"$D/keys.md"
printf '# Installing\n\nDownload the package and run the installer.\n' >"$D/install.md"
SID=$(request_id "$H" docs "$D" --kind file --by alice)
expect_exit 0 rw --home "$H" sources approve "$SID" --by bob
expect_exit 0 rw --home "$H" ingest --all --rules "$RULES" --by carol

T=$H/traces.jsonl
q() { rw --home "$H" query "$@"; }

step "five queries: five chained lines, verify exit 0"
for w in rotate signing key installer package; do expect_json 0 q "$w" --json; done
eq "$(wc -l <"$T")" 5 "trace lines"
mode_is "$T" 600
eq "$(sed -n 1p "$T" | jq -r .prev)" "$(printf '' | sha256sum | cut -d' ' -f1)" "first line's prev (genesis)"
eq "$(sed -n 2p "$T" | jq -r .prev)" "$(sed -n 1p "$T" | tr -d '\n' | sha256sum | cut -d' ' -f1)" "second line's prev"
expect_json 0 rw --home "$H" traces verify --json
json_eq "$OUT" .ok true
json_eq "$OUT" .lines 5
json_eq "$OUT" .broken null
HEAD=$(jq -r .head "$OUT")
eq "$HEAD" "$(sed -n 5p "$T" | tr -d '\n' | sha256sum | cut -d' ' -f1)" "head"
expect_exit 0 rw --home "$H" traces verify "$T"
contains "$ERR" "chain intact"
cp "$T" "$E2E_DIR/good.jsonl"

step "must fail: an edited line breaks the next one"
sed '2s/"query":"signing"/"query":"signinG"/' "$E2E_DIR/good.jsonl" >"$T"
expect_json 1 rw --home "$H" traces verify --json
json_eq "$OUT" .ok false
json_eq "$OUT" .broken.line 3
expect_exit 1 rw --home "$H" traces verify
contains "$ERR" "chain broken at line 3"

step "must fail: a deleted line"
sed '3d' "$E2E_DIR/good.jsonl" >"$T"
expect_json 1 rw --home "$H" traces verify --json
json_eq "$OUT" .broken.line 3

step "must fail: two lines swapped"
awk 'NR == 2 { l = $0; next } NR == 3 { print; print l; next } 1' "$E2E_DIR/good.jsonl" >"$T"
expect_json 1 rw --home "$H" traces verify --json
json_eq "$OUT" .broken.line 2

step "must fail: the first line deleted"
sed '1d' "$E2E_DIR/good.jsonl" >"$T"
expect_json 1 rw --home "$H" traces verify --json
json_eq "$OUT" .broken.line 1

step "must fail: the last line cut, found against a head kept elsewhere"
sed '$d' "$E2E_DIR/good.jsonl" >"$T"
expect_json 0 rw --home "$H" traces verify --json
expect_json 1 rw --home "$H" traces verify --head "$HEAD" --json
json_eq "$OUT" .broken.line 5
expect_exit 64 rw --home "$H" traces verify --head nothex

step "the chain continues after the file changed behind the writer's back"
cp "$E2E_DIR/good.jsonl" "$T"
expect_exit 0 q rotate
expect_json 0 rw --home "$H" traces verify --head "$HEAD" --json
json_eq "$OUT" .lines 6

step "operational errors: no file 2, a symlink 2, bad usage 64"
expect_exit 2 rw --home "$H" traces verify "$E2E_DIR/none.jsonl"
ln -s "$T" "$E2E_DIR/link.jsonl"
expect_exit 2 rw --home "$H" traces verify "$E2E_DIR/link.jsonl"
expect_exit 64 rw --home "$H" traces verify a b

step "must fail: garbage settings are config errors"
for bad in 'traces: yes' $'traces:\n  sink: kafka' $'traces:\n  sync: sometimes' \
	$'traces:\n  syslog_facility: local9' $'traces:\n  path: ""' $'traces:\n  colour: red'; do
	printf '%s\n' "$bad" >"$H/config.yaml"
	expect_exit 64 q rotate
	contains "$ERR" "traces"
	is_empty "$OUT"
done

step "a relative traces.path lives under HOME, created 0600"
mkdir -m 700 "$H/logs"
printf 'traces:\n  path: logs/t.jsonl\n  sync: every\n' >"$H/config.yaml"
expect_exit 0 q rotate
eq "$(wc -l <"$H/logs/t.jsonl")" 1 "lines in the configured file"
mode_is "$H/logs/t.jsonl" 600
expect_json 0 rw --home "$H" traces verify --json
json_eq "$OUT" .file "$H/logs/t.jsonl"
TID=$(q rotate --json | jq -r .trace_id)
printf 'See [1].\n' >"$E2E_DIR/answer.txt"
expect_exit 0 rw --home "$H" cite check "$TID" "$E2E_DIR/answer.txt"

step "must fail: a symlinked trace path is refused (no answer without a trace)"
ln -s "$E2E_DIR/elsewhere.jsonl" "$H/logs/s.jsonl"
printf 'traces:\n  path: logs/s.jsonl\n' >"$H/config.yaml"
expect_exit 2 q rotate
contains "$ERR" "symbolic link"
is_empty "$OUT"
[ ! -e "$E2E_DIR/elsewhere.jsonl" ] || fail "the symlink was followed"
expect_exit 2 rw --home "$H" serve --listen 127.0.0.1:0
contains "$ERR" "symbolic link"

step "must fail: a group-writable trace file is refused"
printf 'traces:\n  path: logs/t.jsonl\n' >"$H/config.yaml"
chmod 0660 "$H/logs/t.jsonl"
expect_exit 2 q rotate
contains "$ERR" "writable by group or others"
chmod 0600 "$H/logs/t.jsonl"

step "syslog only: the query answers, no trace file is written"
rm -f "$T"
printf 'traces:\n  sink: syslog\n  syslog_facility: local4\n' >"$H/config.yaml"
expect_json 0 q rotate --json
[ ! -e "$T" ] || fail "a trace file was written with sink: syslog"
expect_exit 64 rw --home "$H" traces verify
contains "$ERR" "no trace file"
rm -f "$H/config.yaml"

done_ok
