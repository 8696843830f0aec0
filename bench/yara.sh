#!/usr/bin/env bash
# bench/yara.sh — one `ragward scan --json` over a corpus next to `yara -r`
# with a comparable rule set translated from ragward's own rule packs (issue 6).
#
#   bench/yara.sh [CORPUS_DIR]        default: $BENCH_CORPUS, else ../shared/eval/dev/docs
#                                     next to the repository
#   RAGWARD_BIN=/tmp/b/ragward bench/yara.sh     another binary (default build-bench/ragward)
#   BENCH_YARA_RUNS=5 bench/yara.sh              timed runs per tool (default 3, median printed)
#
# Bench only (CI does not run it). What it does, for a reviewer:
#  - installs Debian's `yara` package with apt-get when yara/yarac are missing
#    (and python3-yaml when Python cannot import yaml); that needs root and
#    Debian's configured archive, nothing else is downloaded;
#  - translates rules/injection/*.yaml into one YARA file with bench/rules2yara.py,
#    in a temporary directory removed on exit (never committed), and compiles it
#    with yarac before any timing;
#  - times, wall clock with start-up included, the median of N runs of
#    `yara -r RULES.yar DIR` (YARA's default thread pool and -p 1) and of one
#    `ragward scan --json --rules rules/injection FILE...` over the same files.
#    ragward runs once untimed first so its compiled-rule cache is warm (and
#    the files are in the page cache for both tools);
#  - also times each tool over one empty file (start-up alone) and prints the
#    CPU time (user + system) next to every wall time: the machine is shared;
#  - when DIR/../labels.jsonl exists (the dev corpus), prints recall and
#    false-positive rate of both from the timed runs' output, for YARA once with
#    every translated rule and once without the rules ragward runs only on
#    hidden channels (YARA cannot tell hidden HTML from visible text).
# Figures only: nothing here fails on a threshold. Exit 2 when it cannot run.
#
# The comparison is not like for like, and the output says so: YARA matches
# raw file bytes (no HTML/Markdown extraction, no hidden channels, no NFKC
# folding, confusable skeleton or decoding), and its regex dialect lacks
# lookarounds, \p{..} classes and Unicode case folding, so some patterns are
# approximated or dropped (counted in the output; see bench/rules2yara.py).
set -euo pipefail

case ${1:-} in -h | --help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
corpus=${1:-${BENCH_CORPUS:-$repo/../shared/eval/dev/docs}}
bin=${RAGWARD_BIN:-$repo/build-bench/ragward}
rules=$repo/rules/injection
runs=${BENCH_YARA_RUNS:-3}

[ -d "$corpus" ] || { echo "bench/yara.sh: no corpus directory: $corpus" >&2; exit 2; }
corpus=$(cd "$corpus" && pwd)
[ -x "$bin" ] || { echo "bench/yara.sh: no ragward binary at $bin (set RAGWARD_BIN or build build-bench)" >&2; exit 2; }
case $runs in '' | *[!0-9]* | 0) echo "bench/yara.sh: BENCH_YARA_RUNS must be a positive integer" >&2; exit 2 ;; esac

# Install from the distribution's archive only; apt-get verifies the archive
# signatures. Refresh the package lists once if the first attempt fails.
apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench/yara.sh: '$*' missing and not root: install it (apt-get install $*)" >&2
		exit 2
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null ||
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null; }
}
if ! command -v yara >/dev/null || ! command -v yarac >/dev/null; then apt_install yara; fi
# The converter needs PyYAML; Debian's python3-yaml serves the system python3,
# which may not be the first python3 on PATH (pyenv and the like).
py=python3
if ! { command -v python3 >/dev/null && python3 -c 'import yaml' 2>/dev/null; }; then
	py=/usr/bin/python3
	[ -x "$py" ] || apt_install python3
	"$py" -c 'import yaml' 2>/dev/null || apt_install python3-yaml
fi
command -v jq >/dev/null || { echo "bench/yara.sh: jq is required" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. The comparable rule set; every string was already checked with yarac by
#    the converter, the whole file is compiled again here.
mkdir "$tmp/examples"
"$py" "$here/rules2yara.py" --rules "$rules" --yarac "$(command -v yarac)" \
	--out "$tmp/ragward.yar" --stats "$tmp/stats" --examples "$tmp/examples"
yarac "$tmp/ragward.yar" "$tmp/ragward.yarc" 2>"$tmp/yarac.err" || {
	echo "bench/yara.sh: the generated rule set does not compile:" >&2
	head -5 "$tmp/yarac.err" >&2
	exit 2
}
stat_of() { awk -v k="$1" '$1 == k {print $2}' "$tmp/stats"; }
# The rules' own `match` examples (each a file named <yara rule>.<n>): how many
# the translated rule still matches, as a check of the translation.
ex_total=$(find "$tmp/examples" -type f | wc -l)
ex_hit=$(yara -w -r "$tmp/ragward.yar" "$tmp/examples" |
	awk '{f = $2; sub(/.*\//, "", f); sub(/\.[0-9]+$/, "", f); if (f == $1) n++} END {print n + 0}')

# 2. The files, relative to the corpus directory (both tools get the same set).
cd "$corpus"
mapfile -t files < <(find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "bench/yara.sh: no files in $corpus" >&2; exit 2; }
bytes=$(cat -- "${files[@]}" | wc -c)

# wall OUT MAXRC CMD...: one run of CMD with stdout to OUT; prints "WALL CPU"
# in seconds (CPU = user + system of the process and its threads, bash's time
# keyword). An exit status above MAXRC is reported (ragward: 1 only means
# something would be quarantined; yara: 1 is an error).
wall() {
	local out=$1 maxrc=$2 rc t
	shift 2
	set +e
	t=$({ TIMEFORMAT='%3R %3U %3S'; time "$@" >"$out" 2>>"$tmp/stderr"; } 2>&1)
	rc=$?
	set -e
	[ "$rc" -le "$maxrc" ] || echo "warning: $1 exited $rc (see its stderr below)" >&2
	echo "$t" | awk '{printf "%.3f %.3f\n", $1, $2 + $3}'
}
# median of column $1 (1 wall, 2 CPU) of stdin
median() { awk -v c="${1:-1}" '{print $c}' | LC_ALL=C sort -g |
	awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

rw=("$bin" scan --json --rules "$rules" -- "${files[@]}")
yr=(yara -w -r "$tmp/ragward.yar" .)
yr1=(yara -w -p 1 -r "$tmp/ragward.yar" .)

# Warm-up, untimed: ragward compiles and caches its Vectorscan databases on the
# first run of a rule set; both tools then read the files from the page cache.
wall "$tmp/warm.json" 1 "${rw[@]}" >/dev/null
wall "$tmp/warm.yara" 0 "${yr[@]}" >/dev/null

load0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$tmp/t.rw"; : >"$tmp/t.yr"; : >"$tmp/t.yr1"
for _ in $(seq "$runs"); do # interleaved, so a load change hits all three
	wall "$tmp/rw.json" 1 "${rw[@]}" >>"$tmp/t.rw"
	wall "$tmp/yr.out" 0 "${yr[@]}" >>"$tmp/t.yr"
	wall "$tmp/yr1.out" 0 "${yr1[@]}" >>"$tmp/t.yr1"
done
# Start-up alone: each tool over one empty file (rules loaded, nothing to scan).
: >"$tmp/empty.txt"
: >"$tmp/s.rw"; : >"$tmp/s.yr"
for _ in $(seq "$runs"); do
	wall /dev/null 1 "$bin" scan --json --rules "$rules" -- "$tmp/empty.txt" >>"$tmp/s.rw"
	wall /dev/null 0 yara -w "$tmp/ragward.yar" "$tmp/empty.txt" >>"$tmp/s.yr"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cd - >/dev/null
if [ -s "$tmp/stderr" ]; then
	echo "stderr of the runs (first lines):" >&2
	sort -u "$tmp/stderr" | head -5 >&2
fi

m_rw=$(median <"$tmp/t.rw")
m_yr=$(median <"$tmp/t.yr")
m_yr1=$(median <"$tmp/t.yr1")
mb=$(echo "$bytes / 1000000" | bc -l)
line() { # label, median wall seconds, file of runs
	printf '%-44s %7.3f s  %6.2f MB/s   CPU %6.3f s   (wall of each run: %s)\n' "$1" "$2" \
		"$(echo "$mb / $2" | bc -l)" "$(median 2 <"$3")" "$(awk '{printf "%s ", $1}' "$3")"
}

echo "ragward $("$bin" --version | head -1 | cut -d' ' -f2) vs $(yara --version | head -1 | sed 's/^/YARA /'), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "corpus: $corpus"
printf 'files: %d  size: %.2f MiB (%.2f MB)  load average before/after: %s / %s\n' \
	"${#files[@]}" "$(echo "$bytes / 1048576" | bc -l)" "$mb" "$load0" "$load1"
echo
echo "rule set: $(stat_of rules) ragward rules ($(stat_of patterns) PCRE2 patterns) -> YARA:"
echo "  rules translated     $(stat_of rules_translated)  ($(stat_of rules_exact) with every pattern kept, $(stat_of rules_approximated) with a pattern approximated or dropped)"
echo "  rules untranslatable $(stat_of rules_untranslatable)  ($(stat_of rules_decoded_only) run only on the decoded view: YARA has no decoding for regexes)"
echo "  patterns kept $(stat_of patterns_translated), approximated $(stat_of patterns_approximated), dropped $(stat_of patterns_dropped); reasons:"
awk '$1 == "reason" {n = $2; $1 = $2 = ""; sub(/^ +/, ""); printf "    %3d  %s\n", n, $0}' "$tmp/stats"
echo "  rules ragward runs only on hidden channels (YARA: on every byte): $(stat_of rules_hidden_channel_only)"
echo "  'match' examples of the translated rules matched by their YARA rule: $ex_hit/$ex_total"
echo "  yarac warnings on the whole set: $(grep -c 'warning' "$tmp/yarac.err" || true)"
echo
echo "wall time, median of $runs, start-up included (rule parsing/compilation, warm ragward cache);"
echo "MB/s = 10^6 bytes per wall second; CPU = median user+system seconds:"
line "ragward scan --json (1 thread)" "$m_rw" "$tmp/t.rw"
line "yara -r (default threads: 32 on $(nproc) cores)" "$m_yr" "$tmp/t.yr"
line "yara -p 1 -r (1 thread)" "$m_yr1" "$tmp/t.yr1"
printf 'start-up alone (one empty file), wall/CPU: ragward %.3f/%.3f s, yara %.3f/%.3f s\n' \
	"$(median <"$tmp/s.rw")" "$(median 2 <"$tmp/s.rw")" "$(median <"$tmp/s.yr")" "$(median 2 <"$tmp/s.yr")"
printf 'ratio ragward / yara, wall: %.2fx (default threads), %.2fx (1 thread); CPU: %.2fx, %.2fx\n' \
	"$(echo "$m_rw / $m_yr" | bc -l)" "$(echo "$m_rw / $m_yr1" | bc -l)" \
	"$(echo "$(median 2 <"$tmp/t.rw") / $(median 2 <"$tmp/t.yr")" | bc -l)" \
	"$(echo "$(median 2 <"$tmp/t.rw") / $(median 2 <"$tmp/t.yr1")" | bc -l)"
echo "(ragward extracts HTML/Markdown, builds the folded/skeleton/decoded views and confirms"
echo " with PCRE2; YARA matches the raw bytes only: not the same work, see bench/yara.sh)"

# 3. Detection on a labelled corpus (dev: labels.jsonl beside docs/, paths
#    "docs/<file>"). Any YARA rule matching a file counts as detected; for
#    ragward a verdict other than accept, as bench/eval counts it.
labels=$corpus/../labels.jsonl
if [ -f "$labels" ]; then
	prefix="$(basename "$corpus")/"
	jq -r --arg p "$prefix" 'select(.file | startswith($p)) | [(.file | ltrimstr($p)), .label] | @tsv' "$labels" >"$tmp/labels.tsv"
	jq -r 'select(.verdict != "accept") | .file' "$tmp/rw.json" | sed 's|^\./||' | sort -u >"$tmp/det.rw"
	awk '{f = $0; sub(/^[^ ]+ /, "", f); sub(/^\.\//, "", f); print f}' "$tmp/yr.out" | sort -u >"$tmp/det.yr"
	# the same run without the rules ragward limits to hidden channels
	awk '$1 == "rule" && $3 == ":" && $4 == "hidden_channel_only" {print $2}' "$tmp/ragward.yar" >"$tmp/hidden.rules"
	awk 'NR == FNR {h[$1] = 1; next} !($1 in h) {f = $0; sub(/^[^ ]+ /, "", f); sub(/^\.\//, "", f); print f}' \
		"$tmp/hidden.rules" "$tmp/yr.out" | sort -u >"$tmp/det.yrv"
	rate() { # detected-file list -> "recall r (tp/p)  FPR f (fp/n)"
		awk -F'\t' 'NR == FNR {d[$0] = 1; next}
			{if ($2 == "injection") {p++; tp += ($1 in d)} else {n++; fp += ($1 in d)}}
			END {printf "recall %.3f (%d/%d)   false-positive rate %.3f (%d/%d)", (p ? tp / p : 0), tp, p, (n ? fp / n : 0), fp, n}' \
			"$1" "$tmp/labels.tsv"
	}
	echo
	echo "detection on $(wc -l <"$tmp/labels.tsv") labelled files (detected: ragward verdict != accept; YARA any rule):"
	echo "  ragward  $(rate "$tmp/det.rw")"
	echo "  yara     $(rate "$tmp/det.yr")   all $(stat_of rules_translated) rules"
	echo "  yara     $(rate "$tmp/det.yrv")   without the $(stat_of rules_hidden_channel_only) hidden-channel rules"
fi
