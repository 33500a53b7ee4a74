#!/usr/bin/env bash
# Whole-tool comparison: kapsel against cat (the I/O floor), rage, age, gpg
# and openssl, on a 1 GiB random file in tmpfs, plus 8 GiB through a pipe for
# peak RSS. Prints one Markdown table: median wall time per GiB of RUNS runs
# (after one warm-up run), median user+sys, the largest peak RSS of those runs
# (GNU time's %e %U %S %M, the same rusage fields `time -v` prints), GB/s, and
# the ratio to the matching cat baseline (file to file: `cat in > out`; to
# /dev/null: `cat in > /dev/null`; pipes: `cat in | cat > /dev/null`).
#
# Usage: benches/compare-tools.sh            (from anywhere; not part of the tests)
# Environment: RUNS (default 5), SIZE_MIB (default 1024), BIG_GIB (default 8,
# 0 skips the pipe RSS run), WORK (default /dev/shm/kapsel-compare),
# INSTALL=0 to install nothing (missing tools are then skipped), OTHERS=0 to
# measure only cat and kapsel (about 3 minutes instead of 12).
# Wall times mean little on a busy machine: the table's footer gives the load
# average before and after; user+sys is steadier.
set -euo pipefail

RUNS="${RUNS:-5}"
SIZE_MIB="${SIZE_MIB:-1024}"
BIG_GIB="${BIG_GIB:-8}"
WORK="${WORK:-/dev/shm/kapsel-compare}"
INSTALL="${INSTALL:-1}"
OTHERS="${OTHERS:-1}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

say() { echo "compare-tools: $*" >&2; }

# --- tools -------------------------------------------------------------------
apt_install() {
  [ "$INSTALL" = 1 ] || return 1
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null 2>&1
}

[ -x /usr/bin/time ] || apt_install time || { say "GNU time (/usr/bin/time) is required"; exit 1; }
if [ "$OTHERS" = 1 ]; then
command -v age >/dev/null || apt_install age || say "age not available: skipped"
command -v gpg >/dev/null || apt_install gnupg || say "gpg not available: skipped"
command -v openssl >/dev/null || apt_install openssl || say "openssl not available: skipped"
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v rage >/dev/null && [ "$INSTALL" = 1 ]; then
  say "installing rage with cargo install (a few minutes)"
  timeout 1200 cargo install --locked rage >/dev/null 2>&1 || say "cargo install rage failed: rage skipped"
fi
command -v rage >/dev/null || say "rage not available: skipped"
fi

say "building kapsel (release)"
(cd "$ROOT" && cargo build --release --locked -p kapsel-cli >/dev/null 2>&1) || {
  say "cargo build failed"; exit 1; }
KAPSEL="$ROOT/target/release/kapsel"

# --- inputs and keys ---------------------------------------------------------
mkdir -p "$WORK"
cd "$WORK"
trap 'rm -f "$WORK"/out.* "$WORK"/*.tmp' EXIT
if [ ! -f in.bin ] || [ "$(stat -c %s in.bin)" -ne $((SIZE_MIB * 1024 * 1024)) ]; then
  say "making a ${SIZE_MIB} MiB random input"
  head -c "${SIZE_MIB}M" /dev/urandom > in.bin
fi
BYTES=$((SIZE_MIB * 1024 * 1024))
rm -f kapsel.key sender.key age.key
"$KAPSEL" keygen -o kapsel.key >/dev/null
"$KAPSEL" keygen -o sender.key >/dev/null
KREC="$("$KAPSEL" pubkey kapsel.key)"
SREC="$("$KAPSEL" pubkey sender.key)"
export KAPSEL_SERIAL_DB="$WORK/serials.db"
AREC=""
if [ "$OTHERS" = 1 ]; then
if command -v age-keygen >/dev/null; then
  age-keygen -o age.key 2>/dev/null
elif command -v rage-keygen >/dev/null; then
  rage-keygen -o age.key 2>/dev/null
fi
[ -f age.key ] && AREC="$(grep -o 'age1[0-9a-z]*' age.key | head -1)"
if command -v gpg >/dev/null; then
  export GNUPGHOME="$WORK/gnupg"
  rm -rf "$GNUPGHOME"; mkdir -m 700 "$GNUPGHOME"
  gpg --batch --passphrase '' --quick-gen-key 'bench <bench@kapsel.invalid>' future-default default never >/dev/null 2>&1
fi
if command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout cms.key -out cms.crt -days 2 -subj /CN=bench >/dev/null 2>&1
fi
fi

# --- measuring ---------------------------------------------------------------
ROWS=()
SEP=$'\x1f' # field separator of ROWS (names contain '|')
# measure NAME BASELINE-ROW-NAME COMMAND (a shell command line, run by sh -c)
measure() {
  local name="$1" base="$2" cmd="$3"
  local walls=() cpus=() rss=0 i line w u s m
  rm -f out.data
  sh -c "$cmd" >/dev/null 2>&1 || { say "$name: failed, skipped ($cmd)"; return 0; }
  for ((i = 0; i < RUNS; i++)); do
    rm -f out.data
    /usr/bin/time -f "%e %U %S %M" -o time.tmp sh -c "$cmd" >/dev/null 2>&1 || {
      say "$name: failed on run $i, skipped"; return 0; }
    read -r w u s m < <(tail -1 time.tmp)
    walls+=("$w")
    cpus+=("$(echo "$u + $s" | bc)")
    [ "$m" -gt "$rss" ] && rss="$m"
  done
  local wall cpu
  wall="$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")"
  cpu="$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "$(((RUNS + 1) / 2))p")"
  ROWS+=("$name$SEP$base$SEP$wall$SEP$cpu$SEP$rss")
  say "$name: median ${wall}s (runs: ${walls[*]})"
}

K="$KAPSEL"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
say "machine load before: $LOAD_BEFORE"

measure "cat in > out" "" "cat in.bin > out.data"
measure "cat in > /dev/null" "" "cat in.bin > /dev/null"
measure "cat in | cat > /dev/null" "" "cat in.bin | cat > /dev/null"

"$K" encrypt -q -r "$KREC" -o out.kap in.bin
measure "kapsel encrypt file to file" "cat in > out" "$K encrypt -q -r $KREC -o out.data in.bin"
measure "kapsel decrypt file to file" "cat in > out" "$K decrypt -q -i kapsel.key -o out.data out.kap"
measure "kapsel encrypt to /dev/null" "cat in > /dev/null" "$K encrypt -q -r $KREC in.bin > /dev/null"
measure "kapsel decrypt to /dev/null" "cat in > /dev/null" "$K decrypt -q -i kapsel.key out.kap > /dev/null"
measure "kapsel encrypt < in | kapsel decrypt > /dev/null" "cat in | cat > /dev/null" \
  "$K encrypt -q -r $KREC < in.bin | $K decrypt -q -i kapsel.key > /dev/null"
# Signed files (segments of 1 MiB, each with an ECDSA signature over the
# SHA-256 of its ciphertext), in the same run as the anonymous rows above.
"$K" encrypt -q -r "$KREC" --sign-as sender.key -o out.signed.kap in.bin
measure "kapsel signed encrypt file to file" "cat in > out" "$K encrypt -q -r $KREC --sign-as sender.key -o out.data in.bin"
measure "kapsel signed decrypt file to file" "cat in > out" "$K decrypt -q -i kapsel.key --expect-sender $SREC -o out.data out.signed.kap"
measure "kapsel signed encrypt to /dev/null" "cat in > /dev/null" "$K encrypt -q -r $KREC --sign-as sender.key in.bin > /dev/null"
measure "kapsel signed decrypt to /dev/null" "cat in > /dev/null" "$K decrypt -q -i kapsel.key --expect-sender $SREC out.signed.kap > /dev/null"
measure "kapsel signed 1 MiB range of the file" "" "$K decrypt -q -i kapsel.key --expect-sender $SREC --offset 500000000 --length 1048576 out.signed.kap > /dev/null"
measure "kapsel --threads 1 encrypt file to file" "cat in > out" "$K encrypt -q --threads 1 -r $KREC -o out.data in.bin"
measure "kapsel --threads 1 decrypt file to file" "cat in > out" "$K decrypt -q --threads 1 -i kapsel.key -o out.data out.kap"

if [ "$OTHERS" != 1 ]; then
  say "OTHERS=0: rage, age, gpg and openssl skipped"
elif command -v rage >/dev/null && [ -n "$AREC" ]; then
  rage -r "$AREC" -o out.rage in.bin
  measure "rage encrypt file to file" "cat in > out" "rage -r $AREC -o out.data in.bin"
  measure "rage decrypt file to file" "cat in > out" "rage -d -i age.key -o out.data out.rage"
  measure "rage encrypt to /dev/null" "cat in > /dev/null" "rage -r $AREC in.bin > /dev/null"
  measure "rage decrypt to /dev/null" "cat in > /dev/null" "rage -d -i age.key out.rage > /dev/null"
fi
if [ "$OTHERS" = 1 ] && command -v age >/dev/null && [ -n "$AREC" ]; then
  age -r "$AREC" -o out.age in.bin
  measure "age encrypt file to file" "cat in > out" "age -r $AREC -o out.data in.bin"
  measure "age decrypt file to file" "cat in > out" "age -d -i age.key -o out.data out.age"
  measure "age encrypt to /dev/null" "cat in > /dev/null" "age -r $AREC in.bin > /dev/null"
  measure "age decrypt to /dev/null" "cat in > /dev/null" "age -d -i age.key out.age > /dev/null"
  measure "age encrypt < in | age decrypt > /dev/null" "cat in | cat > /dev/null" \
    "age -r $AREC < in.bin | age -d -i age.key > /dev/null"
fi
if [ "$OTHERS" = 1 ] && command -v gpg >/dev/null; then
  G="gpg --batch --yes --quiet --trust-model always"
  $G -z 0 -r bench@kapsel.invalid -o out.gpg -e in.bin
  measure "gpg -z 0 encrypt file to file" "cat in > out" "$G -z 0 -r bench@kapsel.invalid -o out.data -e in.bin"
  measure "gpg decrypt file to file" "cat in > out" "$G -o out.data -d out.gpg"
fi
if [ "$OTHERS" = 1 ] && command -v openssl >/dev/null; then
  openssl cms -encrypt -binary -stream -aes-256-cbc -in in.bin -outform DER -out out.cms cms.crt
  measure "openssl cms encrypt file to file" "cat in > out" \
    "openssl cms -encrypt -binary -stream -aes-256-cbc -in in.bin -outform DER -out out.data cms.crt"
  measure "openssl cms decrypt file to file" "cat in > out" \
    "openssl cms -decrypt -binary -inform DER -in out.cms -inkey cms.key -out out.data"
fi
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
say "machine load after: $LOAD_AFTER"

# --- peak RSS over a long pipe ----------------------------------------------
BIG=""
BIG_SIGNED=""
if [ "$BIG_GIB" -gt 0 ]; then
  say "${BIG_GIB} GiB of zeros through kapsel encrypt | kapsel decrypt"
  start=$(date +%s.%N)
  head -c "${BIG_GIB}G" /dev/zero \
    | /usr/bin/time -f "%e %U %S %M" -o enc.tmp "$K" encrypt -q -r "$KREC" \
    | /usr/bin/time -f "%e %U %S %M" -o dec.tmp "$K" decrypt -q -i kapsel.key > /dev/null
  end=$(date +%s.%N)
  read -r _ _ _ erss < <(tail -1 enc.tmp)
  read -r _ _ _ drss < <(tail -1 dec.tmp)
  BIG="$(echo "$end - $start" | bc)|$erss|$drss"
  say "${BIG_GIB} GiB of zeros through signed kapsel encrypt | kapsel decrypt"
  start=$(date +%s.%N)
  head -c "${BIG_GIB}G" /dev/zero \
    | /usr/bin/time -f "%e %U %S %M" -o enc.tmp "$K" encrypt -q -r "$KREC" --sign-as sender.key \
    | /usr/bin/time -f "%e %U %S %M" -o dec.tmp "$K" decrypt -q -i kapsel.key --expect-sender "$SREC" > /dev/null
  end=$(date +%s.%N)
  read -r _ _ _ erss < <(tail -1 enc.tmp)
  read -r _ _ _ drss < <(tail -1 dec.tmp)
  BIG_SIGNED="$(echo "$end - $start" | bc)|$erss|$drss"
fi

# --- table -------------------------------------------------------------------
cpu_model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo
echo "Machine: $(nproc) cores ($cpu_model), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r); input ${SIZE_MIB} MiB of random bytes on $(df --output=fstype "$WORK" | tail -1) ($WORK); median of $RUNS runs after a warm-up; $(date -u +%Y-%m-%d)."
echo "Load average (1, 5, 15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER."
echo "Versions: kapsel $("$K" --version | awk '{print $2}')$([ "$OTHERS" = 1 ] && command -v rage >/dev/null && echo ", rage $(rage --version | awk '{print $2}')")$(command -v age >/dev/null && echo ", age $(age --version)")$(command -v gpg >/dev/null && echo ", gpg $(gpg --version | head -1 | awk '{print $3}')")$(command -v openssl >/dev/null && echo ", $(openssl version | awk '{print $1, $2}')")."
echo
echo "| command | wall per GiB | user+sys per GiB | peak RSS | GB/s | vs cat |"
echo "|---|---|---|---|---|---|"
declare -A WALL
for row in "${ROWS[@]}"; do
  IFS="$SEP" read -r name _ wall _ _ <<<"$row"
  WALL["$name"]="$wall"
done
for row in "${ROWS[@]}"; do
  IFS="$SEP" read -r name base wall cpu rss <<<"$row"
  per_gib="$(echo "scale=3; $wall * 1073741824 / $BYTES" | bc)"
  cpu_gib="$(echo "scale=3; $cpu * 1073741824 / $BYTES" | bc)"
  gbs="$(echo "scale=4; $BYTES / 1000000000 / $wall" | bc 2>/dev/null || echo 0)"
  ratio="-"
  if [ -n "$base" ] && [ -n "${WALL[$base]:-}" ]; then
    ratio="$(printf '%.2fx' "$(echo "scale=4; $wall / ${WALL[$base]}" | bc)")"
  fi
  printf '| `%s` | %.2f s | %.2f s | %d MiB | %.2f | %s |\n' \
    "$name" "$per_gib" "$cpu_gib" $(((rss + 1023) / 1024)) "$gbs" "$ratio"
done
if [ -n "$BIG" ]; then
  IFS='|' read -r secs erss drss <<<"$BIG"
  echo
  printf '%d GiB of zeros through `kapsel encrypt | kapsel decrypt > /dev/null`: %.1f s, peak RSS %d MiB (encrypt), %d MiB (decrypt).\n' \
    "$BIG_GIB" "$secs" $(((erss + 1023) / 1024)) $(((drss + 1023) / 1024))
  IFS='|' read -r secs erss drss <<<"$BIG_SIGNED"
  printf '%d GiB of zeros through signed `kapsel encrypt --sign-as | kapsel decrypt --expect-sender > /dev/null`: %.1f s, peak RSS %d MiB (encrypt), %d MiB (decrypt).\n' \
    "$BIG_GIB" "$secs" $(((erss + 1023) / 1024)) $(((drss + 1023) / 1024))
fi
