#!/usr/bin/env bash
# The README quick start: scripts/demo runs the main job on the bundled example.
#
# The demo installs packages and builds build/ragward itself. Here it must not
# touch the system or the build tree under test, so it runs from a scratch copy
# of the tree where scripts/install-deps is a no-op and `cmake` is a stub that
# puts the binary under test where the demo expects its build (`-B DIR` ->
# DIR/ragward). Everything else in the tree is linked read-only into the copy.
source "$(dirname "$0")/lib.sh"

DEMO="$RAGWARD_SOURCE_DIR/scripts/demo"
if [ ! -f "$DEMO" ]; then
	echo "SKIP: $DEMO does not exist yet"
	exit 0
fi

step "prepare a scratch tree with stub install-deps and cmake"
TREE="$E2E_DIR/tree"
STUBS="$E2E_DIR/stubs"
mkdir -p "$TREE/scripts" "$STUBS"
for e in "$RAGWARD_SOURCE_DIR"/*; do
	case "$(basename "$e")" in
	scripts | build | build-*) ;;
	*) ln -s "$e" "$TREE/$(basename "$e")" ;;
	esac
done
for e in "$RAGWARD_SOURCE_DIR"/scripts/*; do
	ln -s "$e" "$TREE/scripts/$(basename "$e")"
done
rm "$TREE/scripts/demo"
cp "$DEMO" "$TREE/scripts/demo"
rm -f "$TREE/scripts/install-deps"
printf '#!/bin/sh\necho "install-deps (stub): nothing to do" >&2\n' >"$TREE/scripts/install-deps"
cat >"$STUBS/cmake" <<'EOF'
#!/usr/bin/env bash
# stub: configure/build -> link the binary under test into the build directory
dir=""
while [ $# -gt 0 ]; do
	case "$1" in
	-B) dir=$2; shift ;;
	-B*) dir=${1#-B} ;;
	--build) dir=$2; shift ;;
	esac
	shift
done
[ -n "$dir" ] || exit 0
mkdir -p "$dir" && ln -sf "$RAGWARD_BIN" "$dir/ragward"
EOF
for tool in apt-get sudo; do
	printf '#!/bin/sh\necho "%s must not run in the e2e test" >&2\nexit 99\n' "$tool" >"$STUBS/$tool"
done
chmod +x "$TREE/scripts/demo" "$TREE/scripts/install-deps" "$STUBS"/*

step "scripts/demo runs to the end with RAGWARD_HOME set"
DH=$(fresh_home)
expect_exit 0 env PATH="$STUBS:$PATH" RAGWARD_HOME="$DH" bash "$TREE/scripts/demo"
cp "$OUT" "$E2E_DIR/demo.out"
cp "$ERR" "$E2E_DIR/demo.err"
[ -f "$DH/store.db" ] || { e2e_dump; fail "the demo did not create a store in RAGWARD_HOME ($DH)"; }
grep -qF -- "$DH" "$E2E_DIR/demo.out" "$E2E_DIR/demo.err" || fail "the demo output does not name its store"

step "the demo's store: a source requested by one person and approved by another"
expect_json 0 rw --home "$DH" sources list --state approved --json
json_true "$OUT" '.sources | length >= 1' "the demo left no approved source"
json_true "$OUT" '[.sources[] | .requested_by != .decided_by] | all' "a demo source was approved by its requester"

step "the demo's audit log records request and approval, and verifies"
expect_json 0 rw --home "$DH" audit log --limit 0 --json
json_true "$OUT" '[.events[].action] | (index("source.request") != null and index("source.approve") != null)' \
	"the audit log lacks source.request / source.approve"
expect_json 0 rw --home "$DH" audit verify --json
json_eq "$OUT" .ok true

done_ok
