#!/usr/bin/env bash
# The live exchange at full size: a random file (1 GiB by default) on tmpfs
# sent with `kapsel send` to `kapsel listen` over loopback TCP, and over a
# pipe pair (`--stdio`, joined by a FIFO), against the plain pipeline
# `kapsel encrypt < in | kapsel decrypt -o out` and `cat in > out`. Prints
# one Markdown table: median wall time of RUNS runs (after one warm-up),
# user+sys of both processes, the peak RSS of each side, GB/s, and the ratio
# to the plain pipeline. Every output is compared with the input.
#
# Usage: benches/exchange.sh        (from anywhere; not part of the tests)
# Environment: RUNS (default 5), SIZE_MIB (default 1024),
# WORK (default /dev/shm/kapsel-exchange).
set -euo pipefail

RUNS="${RUNS:-5}"
SIZE_MIB="${SIZE_MIB:-1024}"
WORK="${WORK:-/dev/shm/kapsel-exchange}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

say() { echo "exchange-bench: $*" >&2; }
[ -x /usr/bin/time ] || { say "GNU time (/usr/bin/time) is required (apt-get install time)"; exit 1; }
command -v bc >/dev/null || { say "bc is required (apt-get install bc)"; exit 1; }

say "building kapsel (release)"
(cd "$ROOT" && cargo build --release --locked -p kapsel-cli >/dev/null 2>&1) || {
  say "cargo build failed"; exit 1; }
K="$ROOT/target/release/kapsel"

mkdir -p "$WORK"
cd "$WORK"
trap 'rm -f "$WORK"/out.bin "$WORK"/back "$WORK"/*.time "$WORK"/listen.err; kill $(jobs -p) 2>/dev/null || true' EXIT
if [ ! -f in.bin ] || [ "$(stat -c %s in.bin)" -ne $((SIZE_MIB * 1024 * 1024)) ]; then
  say "making a ${SIZE_MIB} MiB random input"
  head -c "${SIZE_MIB}M" /dev/urandom > in.bin
fi
BYTES=$((SIZE_MIB * 1024 * 1024))
rm -f bob.key
"$K" keygen -o bob.key >/dev/null 2>&1
REC="$("$K" pubkey bob.key)"
IN_SUM="$(sha256sum < in.bin)"

TF='%e %U %S %M'
check_output() {
  [ "$(sha256sum < out.bin)" = "$IN_SUM" ] || { say "$1: output differs from the input"; exit 1; }
}

# Each run writes a new out.bin (as every tool here does) and prints
# "wall cpu rss_a rss_b" (rss in KiB).
run_cat() {
  local s e
  rm -f out.bin
  s=$(date +%s.%N); /usr/bin/time -f "$TF" -o a.time cat in.bin > out.bin; e=$(date +%s.%N)
  read -r _ u1 s1 m1 < a.time
  echo "$(echo "$e - $s" | bc) $(echo "$u1 + $s1" | bc) $m1 0"
}

run_pipeline() {
  local s e
  rm -f out.bin
  s=$(date +%s.%N)
  /usr/bin/time -f "$TF" -o a.time "$K" -q encrypt -r "$REC" < in.bin \
    | /usr/bin/time -f "$TF" -o b.time "$K" -q decrypt -i bob.key -o out.bin
  e=$(date +%s.%N)
  read -r _ u1 s1 m1 < a.time; read -r _ u2 s2 m2 < b.time
  echo "$(echo "$e - $s" | bc) $(echo "$u1 + $s1 + $u2 + $s2" | bc) $m1 $m2"
}

run_tcp() {
  local s e port
  rm -f listen.err out.bin
  /usr/bin/time -f "$TF" -o b.time "$K" listen 127.0.0.1:0 -i bob.key -o out.bin 2> listen.err &
  local lpid=$!
  for _ in $(seq 200); do
    port=$(grep -o '127.0.0.1:[0-9]*' listen.err 2>/dev/null | head -1 || true)
    [ -n "$port" ] && break
    sleep 0.02
  done
  [ -n "$port" ] || { say "listen did not start"; cat listen.err >&2; exit 1; }
  s=$(date +%s.%N)
  /usr/bin/time -f "$TF" -o a.time "$K" -q send "$port" -r "$REC" in.bin
  wait "$lpid"
  e=$(date +%s.%N)
  read -r _ u1 s1 m1 < a.time; read -r _ u2 s2 m2 < b.time
  echo "$(echo "$e - $s" | bc) $(echo "$u1 + $s1 + $u2 + $s2" | bc) $m1 $m2"
}

run_stdio() {
  local s e
  rm -f back out.bin
  mkfifo back
  s=$(date +%s.%N)
  /usr/bin/time -f "$TF" -o a.time "$K" -q send --stdio -r "$REC" in.bin < back \
    | /usr/bin/time -f "$TF" -o b.time "$K" -q listen --stdio -i bob.key -o out.bin > back
  e=$(date +%s.%N)
  rm -f back
  read -r _ u1 s1 m1 < a.time; read -r _ u2 s2 m2 < b.time
  echo "$(echo "$e - $s" | bc) $(echo "$u1 + $s1 + $u2 + $s2" | bc) $m1 $m2"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -A WALL CPU RSS_A RSS_B
measure() {
  local name=$1 fn=$2 walls=() cpus=() ra=0 rb=0 line
  "$fn" > /dev/null; check_output "$name"   # warm-up
  for _ in $(seq "$RUNS"); do
    line=$("$fn"); check_output "$name"
    read -r w c a b <<< "$line"
    walls+=("$w"); cpus+=("$c")
    [ "$a" -gt "$ra" ] && ra=$a
    [ "$b" -gt "$rb" ] && rb=$b
  done
  WALL[$name]=$(printf '%s\n' "${walls[@]}" | median)
  CPU[$name]=$(printf '%s\n' "${cpus[@]}" | median)
  RSS_A[$name]=$ra; RSS_B[$name]=$rb
  say "$name: median ${WALL[$name]} s (runs: ${walls[*]})"
}

say "machine load before: $(cut -d' ' -f1-3 /proc/loadavg)"
measure cat run_cat
measure pipeline run_pipeline
measure tcp run_tcp
measure stdio run_stdio
say "machine load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), input ${SIZE_MIB} MiB of random bytes on tmpfs; median of $RUNS runs after a warm-up; $(date -u +%F)."
echo
echo "| command | wall | user+sys (both sides) | peak RSS sender / receiver | GB/s | vs pipeline |"
echo "|---|---|---|---|---|---|"
row() {
  local name=$1 label=$2
  local w=${WALL[$name]}
  printf '| %s | %.2f s | %.2f s | %d / %d MiB | %.2f | %s |\n' "$label" "$w" "${CPU[$name]}" \
    $((RSS_A[$name] / 1024)) $((RSS_B[$name] / 1024)) "$(echo "$BYTES / $w / 1000000000" | bc -l)" \
    "$(printf '%.2fx' "$(echo "$w / ${WALL[pipeline]}" | bc -l)")"
}
row cat '`cat in > out`'
row pipeline '`kapsel encrypt < in \| kapsel decrypt -o out`'
row tcp '`kapsel send 127.0.0.1:PORT in` to `kapsel listen -o out`'
row stdio '`kapsel send --stdio` / `kapsel listen --stdio` over a pipe pair'
