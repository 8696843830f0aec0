#!/usr/bin/env bash
# Source governance: request (canonicalization, rejected patterns), the
# two-person rule, the state machine, list/show, and the baseline import.
source "$(dirname "$0")/lib.sh"

SOURCE_KEYS="id name kind pattern trust labels allow_private state origin requested_by requested_uid
requested_at reason decided_by decided_uid decided_at note seeds"
UID_NOW=$(id -u)

H=$(init_home)

step "sources request prints just the new id on stdout"
expect_exit 0 rw --home "$H" sources request guide 'https://Docs.Example.COM:443/guide/' --by alice
eq "$(cat "$OUT")" 1 "stdout of sources request"
[ "$(wc -l <"$OUT")" -eq 1 ] || fail "sources request printed more than one line"
contains "$ERR" "https://docs.example.com/guide/"

step "sources request --json: the full source, canonicalized, state requested"
expect_json 0 rw --home "$H" sources request idn 'https://Bücher.Example/Katalog/' --trust high \
	--labels 'public,team-a,public' --by alice --reason 'catalogue' --json
json_keys "$OUT" . "$SOURCE_KEYS"
json_eq "$OUT" .id 2
json_eq "$OUT" .name idn
json_eq "$OUT" .kind https
json_eq "$OUT" .pattern 'https://xn--bcher-kva.example/Katalog/'
json_eq "$OUT" .trust high
json_eq "$OUT" .labels '["public","team-a"]'
json_eq "$OUT" .allow_private false
json_eq "$OUT" .state requested
json_eq "$OUT" .origin cli
json_eq "$OUT" .requested_by alice
json_eq "$OUT" .requested_uid "$UID_NOW"
json_true "$OUT" '.requested_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")' "requested_at is not RFC 3339 UTC"
json_eq "$OUT" .reason catalogue
json_eq "$OUT" '[.decided_by, .decided_uid, .decided_at, .note]' '[null,null,null,null]'

step "canonicalization: lowercase host, default port dropped, fragment-free, wildcard host"
expect_json 0 rw --home "$H" sources show 1 --json
json_keys "$OUT" . "$SOURCE_KEYS"
json_eq "$OUT" .pattern 'https://docs.example.com/guide/'
json_eq "$OUT" .kind https
json_eq "$OUT" .trust standard
json_eq "$OUT" .labels '[]'
expect_json 0 rw --home "$H" sources request wild 'https://*.Example.ORG/' --by alice --json
json_eq "$OUT" .pattern 'https://*.example.org/'
expect_json 0 rw --home "$H" sources request port 'https://example.net:8443/a/' --by alice --json
json_eq "$OUT" .pattern 'https://example.net:8443/a/'
expect_json 0 rw --home "$H" sources request plain 'http://Plain.Example:80/x/' --kind http --allow-private --by alice --json
json_eq "$OUT" .kind http
json_eq "$OUT" .pattern 'http://plain.example/x/'
json_eq "$OUT" .allow_private true

expect_json 0 rw --home "$H" sources request dots 'https://dots.example/x/../y/./z/' --by alice --json
json_eq "$OUT" .pattern 'https://dots.example/y/z/'

step "--kind file: an absolute directory path"
expect_json 0 rw --home "$H" sources request files /srv/docs/ --kind file --by alice --json
json_eq "$OUT" .kind file
json_true "$OUT" '.pattern | test("^/srv/docs/?$")' "file pattern is not /srv/docs"
expect_json 0 rw --home "$H" sources request files2 /srv/other --by alice --json
json_eq "$OUT" .kind file
expect_exit 64 rw --home "$H" sources request relfile srv/docs --kind file --by alice
expect_exit 64 rw --home "$H" sources request dotfile /srv/../etc --kind file --by alice

step "rejected patterns exit 64 and store nothing"
expect_json 0 rw --home "$H" sources list --json
count_before=$(jq '.sources | length' "$OUT")
events_before=$(audit_count "$H")
bad=(
	'https://user:secret@example.com/'
	'https://user@example.com/'
	'ftp://example.com/pub/'
	'javascript:alert(1)'
	'file:///etc/'
	$'https://example.com/a\x01b/'
	$'https://example.com/a\x7fb/'
	$'https://exa\tmple.com/'
	'http://example.com/'
	'https://example.com/#top'
	'not a url'
	'https://'
	'https://example.com/?q=1'
	'https://example.com/%2e%2e/etc/'
	'https://example.com/a%2Fb/'
	'https://example.com/a%5cb/'
	'https://example.com/ü/'
)
for p in "${bad[@]}"; do
	expect_exit 64 rw --home "$H" sources request badpattern "$p" --by alice
	is_empty "$OUT"
done
expect_json_error 64 EINVAL rw --home "$H" sources request badpattern 'https://user:secret@example.com/' --by alice --json
json_true "$OUT" '.error.message | test("userinfo"; "i")' "userinfo error does not say so"
lacks "$OUT" secret@
expect_json_error 64 EINVAL rw --home "$H" sources request badpattern 'http://example.com/' --by alice --json
json_true "$OUT" '.error.message | test("--kind http")' "plain-http error does not name --kind http"
expect_json 0 rw --home "$H" sources list --json
json_eq "$OUT" '.sources | length' "$count_before"
eq "$(audit_count "$H")" "$events_before" "audit events after rejected requests"

step "a duplicate name is refused with exit 1"
expect_exit 1 rw --home "$H" sources request guide https://elsewhere.example/ --by carol

step "approve by another person: exit 0, approved, decision recorded"
expect_json 0 rw --home "$H" sources approve 1 --by bob --note 'looks fine' --json
json_keys "$OUT" . "$SOURCE_KEYS"
json_eq "$OUT" .state approved
json_eq "$OUT" .decided_by bob
json_eq "$OUT" .decided_uid "$UID_NOW"
json_eq "$OUT" .note 'looks fine'
json_eq "$OUT" .requested_by alice
json_true "$OUT" '.decided_at | type == "string"' "decided_at missing"
expect_json 0 rw --home "$H" sources show 1 --json
json_eq "$OUT" '[.state, .decided_by, .note]' '["approved","bob","looks fine"]'
expect_json 0 rw --home "$H" audit log --limit 1 --json
json_eq "$OUT" '.events[0] | [.action, .actor, .subject]' '["source.approve","bob","source:1"]'

step "approve by the requester: exit 1 (two-person rule), state stays requested"
n=$(audit_count "$H")
expect_exit 1 rw --home "$H" sources approve 2 --by alice
contains_i "$ERR" "two-person"
expect_json_error 1 EPOLICY rw --home "$H" sources approve 2 --by alice --json
expect_json 0 rw --home "$H" sources show 2 --json
json_eq "$OUT" '[.state, .decided_by]' '["requested",null]'
eq "$(audit_count "$H")" "$n" "audit events after a refused approval"

step "the OS user is the default actor (--by absent)"
OS_USER=$(id -un)
expect_exit 0 rw --home "$H" sources request byos https://byos.example/
BYOS=$(cat "$OUT")
expect_json 0 rw --home "$H" sources show "$BYOS" --json
json_eq "$OUT" .requested_by "$OS_USER"
expect_exit 1 rw --home "$H" sources approve "$BYOS"

step "illegal transitions exit 1 and change nothing"
expect_exit 0 rw --home "$H" sources reject 3 --by bob --note 'too broad'
expect_json 0 rw --home "$H" sources show 3 --json
json_eq "$OUT" '[.state, .decided_by, .note]' '["rejected","bob","too broad"]'
n=$(audit_count "$H")
expect_exit 1 rw --home "$H" sources approve 3 --by carol # approve a rejected source
expect_json_error 1 ESTATE rw --home "$H" sources approve 3 --by carol --json
expect_exit 1 rw --home "$H" sources revoke 3 --by carol  # revoke a rejected source
expect_exit 1 rw --home "$H" sources reject 3 --by carol  # reject twice
expect_exit 1 rw --home "$H" sources revoke 2 --by bob    # revoke a requested source
expect_exit 1 rw --home "$H" sources reject 1 --by carol  # reject an approved source
expect_exit 1 rw --home "$H" sources approve 1 --by carol # approve twice
eq "$(audit_count "$H")" "$n" "audit events after illegal transitions"
expect_json 0 rw --home "$H" sources show 3 --json
json_eq "$OUT" .state rejected
expect_json 0 rw --home "$H" sources show 1 --json
json_eq "$OUT" '[.state, .decided_by]' '["approved","bob"]'

step "revoke an approved source, then approve it again"
expect_json 0 rw --home "$H" sources revoke 1 --by carol --note 'incident' --json
json_eq "$OUT" '[.state, .decided_by, .note]' '["revoked","carol","incident"]'
expect_exit 1 rw --home "$H" sources revoke 1 --by carol # revoke twice
expect_exit 1 rw --home "$H" sources reject 1 --by carol # reject a revoked source
expect_exit 1 rw --home "$H" sources approve 1 --by alice # the requester still may not approve
expect_json 0 rw --home "$H" sources approve 1 --by dave --json
json_eq "$OUT" '[.state, .decided_by]' '["approved","dave"]'

step "sources list --json and --state filter"
expect_json 0 rw --home "$H" sources list --json
json_keys "$OUT" . sources
json_true "$OUT" '[.sources[].id] == ([.sources[].id] | sort)' "sources not ordered by id"
json_true "$OUT" '.sources | length >= 8'
json_eq "$OUT" '[.sources[] | keys | length] | unique' '[18]'
total=$(jq '.sources | length' "$OUT")
sum=0
for s in requested approved rejected revoked; do
	expect_json 0 rw --home "$H" sources list --state "$s" --json
	json_eq "$OUT" "[.sources[].state | select(. != \"$s\")] | length" 0
	sum=$((sum + $(jq '.sources | length' "$OUT")))
done
eq "$sum" "$total" "sum of per-state lists"
expect_json 0 rw --home "$H" sources list --state approved --json
json_eq "$OUT" '[.sources[].name]' '["guide"]'
expect_json 0 rw --home "$H" sources list --state rejected --json
json_eq "$OUT" '[.sources[].name]' '["wild"]'
expect_exit 0 rw --home "$H" sources list
is_empty "$OUT"
contains "$ERR" "https://docs.example.com/guide/"

step "sources show (human) goes to stderr and escapes bidi controls; ESC in text is refused"
expect_exit 0 rw --home "$H" sources show 1
is_empty "$OUT"
contains "$ERR" "approved"
expect_exit 64 rw --home "$H" sources request esc https://esc.example/ --by alice --reason $'red \e[31m'
RLO=$(printf '\xe2\x80\xae')
expect_exit 0 rw --home "$H" sources request esc https://esc.example/ --by alice --reason "line1
line2 ${RLO}evil"
ESC=$(cat "$OUT")
expect_exit 0 rw --home "$H" sources show "$ESC"
lacks "$ERR" "$RLO"
contains "$ERR" 'evil'
expect_json 0 rw --home "$H" sources show "$ESC" --json
json_eq "$OUT" .reason "line1
line2 ${RLO}evil"
lacks "$OUT" "$RLO" # --json output is ASCII-escaped

step "two_person_rule: false in HOME/config.yaml lets the requester approve"
H2=$(init_home)
printf 'two_person_rule: false\n' >"$H2/config.yaml"
ID=$(request_id "$H2" solo https://solo.example/ --by alice)
expect_json 0 rw --home "$H2" sources approve "$ID" --by alice --json
json_eq "$OUT" '[.state, .requested_by, .decided_by]' '["approved","alice","alice"]'
expect_json 0 rw --home "$H2" audit log --limit 1 --json
json_eq "$OUT" '.events[0].action' source.approve
json_eq "$OUT" '.events[0].details.two_person_rule' false
printf 'two_person_rule: true\n' >"$H2/config.yaml"
ID=$(request_id "$H2" solo2 https://solo2.example/ --by alice)
expect_exit 1 rw --home "$H2" sources approve "$ID" --by alice
printf 'two_person_rul: false\n' >"$H2/config.yaml" # a typo must not silently keep defaults
rc=0
rw --home "$H2" sources approve "$ID" --by alice >"$OUT" 2>"$ERR" || rc=$?
[ "$rc" -ne 0 ] || fail "a config.yaml with an unknown key was accepted"
contains "$ERR" two_person_rul
rm "$H2/config.yaml"
expect_json 0 rw --home "$H2" sources show "$ID" --json
json_eq "$OUT" .state requested

step "sources import: a baseline YAML adds approved sources"
H3=$(init_home)
BASE="$E2E_DIR/sources.yaml"
cat >"$BASE" <<'EOF'
# reviewed baseline
version: 1
sources:
  - name: product-docs
    pattern: https://Docs.Example.com/product/
    kind: https
    trust: high
    labels: [public, product]
  - name: wiki
    pattern: https://wiki.example.com/
    trust: standard
    labels:
      - internal
  - name: handbook
    pattern: /srv/handbook
    kind: file
    trust: low
    labels: []
EOF
SHA=$(sha256sum "$BASE" | cut -d' ' -f1)
n0=$(audit_count "$H3")
expect_json 0 rw --home "$H3" sources import "$BASE" --by importer --json
json_keys "$OUT" . "file sha256 added unchanged"
json_eq "$OUT" '[.added, .unchanged]' '[3,0]'
json_eq "$OUT" .sha256 "$SHA"
json_eq "$OUT" .file "$BASE"
contains "$ERR" "3 added"
expect_json 0 rw --home "$H3" sources list --json
json_eq "$OUT" '[.sources[].name]' '["product-docs","wiki","handbook"]'
json_eq "$OUT" '[.sources[].state] | unique' '["approved"]'
json_eq "$OUT" '[.sources[].origin] | unique' '["import"]'
json_eq "$OUT" '.sources[0] | [.kind, .pattern, .trust, .labels]' '["https","https://docs.example.com/product/","high",["product","public"]]'
json_eq "$OUT" '.sources[1] | [.kind, .trust, .labels]' '["https","standard",["internal"]]'
json_eq "$OUT" '.sources[2] | [.kind, .pattern, .trust]' '["file","/srv/handbook","low"]'
json_eq "$OUT" '[.sources[] | [.requested_by, .decided_by]] | unique' '[["importer","importer"]]'
json_true "$OUT" "[.sources[].note | contains(\"$SHA\")] | all" "the import note does not carry the file's SHA-256"

step "  ... the file's SHA-256 is in the audit log"
n1=$(audit_count "$H3")
[ "$n1" -gt "$n0" ] || fail "import appended no audit event"
expect_json 0 rw --home "$H3" audit log --limit 0 --json
json_true "$OUT" "[.events[] | select(.action == \"sources.import\")] | length == 1" "expected one sources.import event"
json_eq "$OUT" '.events[] | select(.action == "sources.import") | .details.sha256' "$SHA"
json_eq "$OUT" '.events[] | select(.action == "sources.import") | .details.added' '["product-docs","wiki","handbook"]'
json_eq "$OUT" '.events[] | select(.action == "sources.import") | .actor' importer

step "  ... re-import is idempotent: added 0, no new audit event"
expect_json 0 rw --home "$H3" sources import "$BASE" --by importer --json
json_eq "$OUT" '[.added, .unchanged]' '[0,3]'
eq "$(audit_count "$H3")" "$n1" "audit events after re-import"

step "  ... an extended baseline adds only the new entry (unchanged counted)"
BASE2="$E2E_DIR/sources2.yaml"
cp "$BASE" "$BASE2"
cat >>"$BASE2" <<'EOF'
  - name: blog
    pattern: https://blog.example.com/
EOF
expect_json 0 rw --home "$H3" sources import "$BASE2" --json
json_eq "$OUT" '[.added, .unchanged]' '[1,3]'
expect_json 0 rw --home "$H3" audit log --limit 1 --json
json_eq "$OUT" '.events[0].action' sources.import
json_eq "$OUT" '.events[0].details | [.added, .unchanged]' '[["blog"],3]'
n2=$(audit_count "$H3")

step "  ... a conflicting definition fails the whole import with exit 1, nothing added"
BAD="$E2E_DIR/conflict.yaml"
cat >"$BAD" <<'EOF'
version: 1
sources:
  - name: newcomer
    pattern: https://newcomer.example.com/
  - name: wiki
    pattern: https://wiki.example.com/
    trust: high
    labels: [internal]
EOF
expect_exit 1 rw --home "$H3" sources import "$BAD"
contains "$ERR" wiki
expect_json_error 1 "" rw --home "$H3" sources import "$BAD" --json
expect_json 0 rw --home "$H3" sources list --json
json_eq "$OUT" '.sources | length' 4
json_eq "$OUT" '[.sources[].name | select(. == "newcomer")] | length' 0
json_eq "$OUT" '.sources[] | select(.name == "wiki") | .trust' standard
eq "$(audit_count "$H3")" "$n2" "audit events after a conflicting import"

step "  ... malformed baselines exit 64 and add nothing"
printf '\x00\x01garbage: [unclosed\n  - {{{\n' >"$E2E_DIR/garbage.yaml"
printf 'just a string\n' >"$E2E_DIR/scalar.yaml"
printf 'version: 2\nsources: []\n' >"$E2E_DIR/v2.yaml"
printf 'sources:\n  - name: x\n    pattern: https://x.example/\n' >"$E2E_DIR/noversion.yaml"
printf 'version: 1\nsources:\n  - name: x\n    pattern: https://x.example/\n    colour: red\n' >"$E2E_DIR/unknownkey.yaml"
printf 'version: 1\nsources:\n  - name: x\n    pattern: ftp://x.example/\n' >"$E2E_DIR/badpattern.yaml"
printf 'version: 1\nsources:\n  - name: x\n    pattern: https://x.example/\n  - name: x\n    pattern: https://y.example/\n' >"$E2E_DIR/dup.yaml"
printf 'version: 1\nsources:\n  - name: x\n    pattern: https://u:p@x.example/\n' >"$E2E_DIR/userinfo.yaml"
printf 'version: 1\nsources:\n  - &a\n    name: x\n    pattern: https://x.example/\n  - *a\n' >"$E2E_DIR/anchor.yaml"
printf 'version: 1\nsources: []\n---\nversion: 1\nsources: []\n' >"$E2E_DIR/multidoc.yaml"
for f in garbage scalar v2 noversion unknownkey badpattern dup userinfo anchor multidoc; do
	expect_exit 64 rw --home "$H3" sources import "$E2E_DIR/$f.yaml"
done
expect_json_error 64 "" rw --home "$H3" sources import "$E2E_DIR/garbage.yaml" --json
expect_json 0 rw --home "$H3" sources list --json
json_eq "$OUT" '.sources | length' 4
eq "$(audit_count "$H3")" "$n2" "audit events after malformed imports"

step "  ... re-importing does not revive a revoked source"
expect_exit 0 rw --home "$H3" sources revoke 2 --by carol
expect_json 0 rw --home "$H3" sources import "$BASE" --json
json_eq "$OUT" '[.added, .unchanged]' '[0,3]'
expect_json 0 rw --home "$H3" sources show 2 --json
json_eq "$OUT" '[.name, .state]' '["wiki","revoked"]'

step "the bundled baseline rules/sources.yaml imports cleanly, and re-imports as a no-op"
BUNDLED="$RAGWARD_SOURCE_DIR/rules/sources.yaml"
if [ -f "$BUNDLED" ]; then
	H4=$(init_home)
	expect_json 0 rw --home "$H4" sources import "$BUNDLED" --json
	json_true "$OUT" '.added >= 1' "the bundled baseline added nothing"
	json_eq "$OUT" .unchanged 0
	json_eq "$OUT" .sha256 "$(sha256sum "$BUNDLED" | cut -d' ' -f1)"
	added=$(jq .added "$OUT")
	expect_json 0 rw --home "$H4" sources list --state approved --json
	json_eq "$OUT" '.sources | length' "$added"
	expect_json 0 rw --home "$H4" sources import "$BUNDLED" --json
	json_eq "$OUT" '[.added, .unchanged]' "[0,$added]"
else
	echo "   ($BUNDLED does not exist: skipped)"
	H4=$H3
fi

step "the audit log of every home still verifies"
for h in "$H" "$H2" "$H3" "$H4"; do
	expect_json 0 rw --home "$h" audit verify --json
	json_eq "$OUT" .ok true
done

done_ok
