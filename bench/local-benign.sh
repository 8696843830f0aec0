#!/usr/bin/env bash
# False positives on benign text the rules were never written against: the
# documentation, Python modules and C headers any Debian machine carries
# (/usr/share/doc/*.gz other than changelogs, /usr/lib/python3*/*.py,
# /usr/include/*.h), copied to a temporary directory as .txt and scanned with
# one `ragward scan --json`. Prints how many files were scanned, how many a
# rule flagged (verdict other than accept because of a rule finding; the type
# gate's own verdicts on files renamed to .txt are counted apart), and each
# flagged file with its rules and first excerpt. Asserts nothing.
#
#   bench/local-benign.sh [N]      N files per source (default 700)
#   RAGWARD_BIN selects the binary (default build-bench/ragward)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-700}
bin=${RAGWARD_BIN:-build-bench/ragward}
[ -x "$bin" ] || { echo "local-benign: '$bin' is not built (bench/run builds it)" >&2; exit 2; }
command -v jq >/dev/null || { echo "local-benign: needs jq" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

i=0
copy() { i=$((i + 1)); cp "$1" "$tmp/$i.txt"; }
while IFS= read -r f; do
	i=$((i + 1))
	zcat -- "$f" >"$tmp/$i.txt" 2>/dev/null || rm -f "$tmp/$i.txt"
done < <(find /usr/share/doc -name '*.gz' -size +2k -size -400k 2>/dev/null | grep -iv changelog | sort | head -n "$n")
while IFS= read -r f; do copy "$f"; done < <(find /usr/lib/python3* -name '*.py' -size +3k -size -300k 2>/dev/null | grep -v /test | sort | head -n "$n")
while IFS= read -r f; do copy "$f"; done < <(find /usr/include -name '*.h' -size +3k -size -300k 2>/dev/null | sort | head -n "$n")

"$bin" scan --json "$tmp"/*.txt 2>/dev/null >"$tmp/out.jsonl" || true
jq -s -r '
  map(select(.verdict != null)) as $all
  | ($all | map(select(.verdict != "accept"))) as $bad
  | ($bad | map(select(any(.findings[]; .rule_id | startswith("typegate.") | not)))) as $rule
  | "\($all | length) files scanned; \($rule | length) flagged by a rule (\(($rule | length) * 1000 / ($all | length) | round / 10)%); \(($bad | length) - ($rule | length)) by the type gate only",
    ($rule[] | "  \([.findings[].rule_id] | unique | join(",")): \(.findings[0].excerpt[0:140])")
' "$tmp/out.jsonl"
