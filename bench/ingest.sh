#!/usr/bin/env bash
# End-to-end local-file ingest throughput: MB/s and documents/s of
# `ragward ingest --all` (type gate, extraction, scan with the bundled rules,
# chunking, signing, one SQLite transaction per document), on
#   1. the bundled example corpus replicated to >= 50 MB, and
#   2. ../shared/eval/dev/docs (when present),
# next to the machine's limits measured in the same run: SHA-256 and Ed25519
# sign rates from `openssl speed`, and what signing alone costs for the chunks
# written (chunks / sign rate). Peak RSS from GNU time. Prints figures; asserts
# nothing.
#
#   bench/ingest.sh [RAGWARD_BIN]       (default: a Release build in build-bench/)
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-}"
if [ -z "$bin" ]; then
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRAGWARD_TESTS=OFF >/dev/null
	cmake --build build-bench -j"$(nproc)" --target ragward >/dev/null
	bin="$PWD/build-bench/ragward"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sign_rate=$(openssl speed -seconds 2 ed25519 2>/dev/null | awk '/Ed25519/ {print $(NF-1)}' | tail -1)
sha_rate=$(openssl speed -seconds 2 -bytes 4096 -evp sha256 2>/dev/null | awk '/^sha256/ {print $NF}' | tail -1)
echo "machine limits (openssl speed): ed25519 sign ${sign_rate:-?}/s, sha256 4 KiB ${sha_rate:-?}"

run() { # NAME DIR
	local name=$1 dir=$2 home="$work/home-$1" bytes files out t0 t1 chunks rss
	bytes=$(du -sb "$dir" | cut -f1)
	files=$(find "$dir" -type f | wc -l)
	"$bin" --home "$home" init >/dev/null 2>&1
	local id
	id=$("$bin" --home "$home" sources request bench "$dir" --kind file --by bench-a 2>/dev/null)
	"$bin" --home "$home" sources approve "$id" --by bench-b >/dev/null 2>&1
	t0=$(date +%s.%N)
	out=$(/usr/bin/time -f '%M' "$bin" --home "$home" ingest --all --json 2>"$work/time.txt" || true)
	t1=$(date +%s.%N)
	rss=$(tail -1 "$work/time.txt")
	chunks=$(sqlite3 "$home/store.db" 'SELECT count(*) FROM chunks')
	awk -v n="$name" -v b="$bytes" -v f="$files" -v t0="$t0" -v t1="$t1" -v c="$chunks" -v s="${sign_rate:-0}" \
		-v rss="$rss" -v counts="$(printf '%s' "$out" | jq -c .counts)" 'BEGIN {
		secs = t1 - t0;
		printf "%-10s %7.1f MB %6d docs %7d chunks  %6.1f s  %6.2f MB/s  %7.1f docs/s  signing share %4.1f%%  peak RSS %d MB\n",
			n, b / 1e6, f, c, secs, b / 1e6 / secs, f / secs, (s > 0 ? 100 * (c / s) / secs : 0), rss / 1024;
		printf "           outcomes %s\n", counts }'
}

# 1. the example corpus replicated to >= 50 MB
rep="$work/examples"
mkdir -p "$rep"
i=0
while [ "$(du -sb "$rep" | cut -f1)" -lt 50000000 ]; do
	mkdir -p "$rep/copy-$i"
	for f in examples/docs/*; do
		# a different byte per copy, so no two documents are identical
		sed "s/Northwind/Northwind $i/" "$f" >"$rep/copy-$i/$(basename "$f")"
	done
	i=$((i + 1))
done
run examples "$rep"

# 2. the labelled evaluation corpus (read in place, never copied into the repo)
if [ -d ../shared/eval/dev/docs ]; then
	run eval-dev "$(cd ../shared/eval/dev/docs && pwd)"
fi
