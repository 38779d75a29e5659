#!/usr/bin/env bash
# A/B of end-to-end decode speed between a base revision and the working tree, in one device
# call (docs/perf.md: machines differ by up to ~6% and two runs in one call by up to ~3%, so an
# effect is read only from alternating runs of both binaries on the same machine).
#
#   scripts/decode_ab.sh --pack REV DIR
#       here, where git works: writes DIR/base.tgz, REV's version of every file that differs
#       from the working tree, and DIR/added.txt, the files REV does not have. Small enough to
#       carry (the device copies the working tree, not the repository's history).
#   scripts/decode_ab.sh --run DIR [--runs N] [--quant "mlx4 mlx8"] [-- BENCH ARGS...]
#       there: builds `mlxn` for the working tree and for the base (the working tree with DIR's
#       files laid over it), then runs `mlxn bench --json` N times each (default 5), base and
#       new alternating, for each storage kind, and prints every run and the medians.
#       BENCH ARGS default to `--synthetic llama3-8b --prompt 512 --gen 128`.
# Environment: MLXN_AB_BUILD (build directory of the working tree, default build-ab),
# MLXN_AB_BASE (where the base tree and its build go, default /tmp/mlxn-ab-base),
# MLXN_AB_CMAKE_ARGS (default -DMLXN_CUDA=ON when nvcc is found).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
  sed -n '2,18p' "$0" >&2
  exit 2
}

pack() {
  local rev=$1 dir=$2
  mkdir -p "$dir"
  git rev-parse --verify --quiet "$rev^{commit}" >/dev/null || { echo "decode_ab: no commit '$rev'" >&2; exit 1; }
  # Tracked files that differ from REV (modified or deleted here) come from REV; files that are
  # new here (tracked or not, unless ignored) are removed from the base. Renames count as a
  # deletion and an addition. Paths with spaces are not supported (the repository has none).
  local changed added
  changed=$(git diff --no-renames --name-only --diff-filter=MDT "$rev" --)
  added=$( { git diff --no-renames --name-only --diff-filter=A "$rev" --; git ls-files --others --exclude-standard; } | sort -u)
  if [[ -n $changed ]]; then
    # shellcheck disable=SC2086
    git archive --format=tar "$rev" -- $changed | gzip >"$dir/base.tgz"
  else
    tar czf "$dir/base.tgz" --files-from /dev/null
  fi
  printf '%s\n' "$added" | sed '/^$/d' >"$dir/added.txt"
  echo "decode_ab: $(echo "$changed" | sed '/^$/d' | wc -l) files from $rev, $(wc -l <"$dir/added.txt") to remove -> $dir"
}

configure_and_build() {
  local src=$1 build=$2 log=$3
  local args=${MLXN_AB_CMAKE_ARGS-}
  if [[ -z ${MLXN_AB_CMAKE_ARGS+x} ]] && command -v nvcc >/dev/null; then args=-DMLXN_CUDA=ON; fi
  local gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release $args >"$log" 2>&1 &&
    cmake --build "$build" -j "$(nproc)" --target mlxn >>"$log" 2>&1 ||
    { echo "decode_ab: build of $src failed (log: $log)" >&2; tail -30 "$log" >&2; exit 1; }
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

run() {
  local dir=$1; shift
  local runs=5 quants="mlx4" bench=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --runs) runs=$2; shift 2 ;;
      --quant) quants=$2; shift 2 ;;
      --) shift; bench=("$@"); break ;;
      *) usage ;;
    esac
  done
  [[ ${#bench[@]} -gt 0 ]] || bench=(--synthetic llama3-8b --prompt 512 --gen 128)
  [[ -f $dir/base.tgz && -f $dir/added.txt ]] || { echo "decode_ab: $dir has no pack (run --pack first)" >&2; exit 1; }
  local new_build=${MLXN_AB_BUILD:-$root/build-ab} base=${MLXN_AB_BASE:-/tmp/mlxn-ab-base}
  local logs=${OUT:-$new_build}
  mkdir -p "$logs" "$base"
  # The base tree: the working tree without build outputs, REV's files over it, new files gone.
  rm -rf "$base/src"
  mkdir -p "$base/src"
  tar -C "$root" --exclude='./build*' --exclude='./.git' --exclude='./.testdata' -cf - . |
    tar -C "$base/src" -xf -
  tar -C "$base/src" -xzf "$dir/base.tgz"
  while IFS= read -r f; do rm -f "$base/src/$f"; done <"$dir/added.txt"
  configure_and_build "$base/src" "$base/build" "$logs/ab_base_build.log"
  configure_and_build "$root" "$new_build" "$logs/ab_new_build.log"
  echo "decode_ab: bench ${bench[*]}, $runs alternating runs each"
  local q i which r
  for q in $quants; do
    : >"$logs/ab_$q.base" ; : >"$logs/ab_$q.new"
    for ((i = 1; i <= runs; i++)); do
      for which in base new; do
        local bin=$base/build/mlxn
        [[ $which == new ]] && bin=$new_build/mlxn
        r=$("$bin" bench "${bench[@]}" --quant "$q" --json 2>/dev/null |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tok_s"])') ||
          { echo "decode_ab: $which run $i ($q) failed" >&2; exit 1; }
        echo "$r" >>"$logs/ab_$q.$which"
        printf 'decode_ab: %-5s %-4s run %d: %.1f tok/s\n' "$q" "$which" "$i" "$r"
      done
    done
    local mb mn
    mb=$(median <"$logs/ab_$q.base"); mn=$(median <"$logs/ab_$q.new")
    python3 -c "import sys; b, n = float(sys.argv[1]), float(sys.argv[2]); print(f'decode_ab: {sys.argv[3]} median base {b:.1f}, new {n:.1f} tok/s, new/base {n / b:.4f}')" "$mb" "$mn" "$q"
  done
}

case ${1-} in
  --pack) [[ $# -eq 3 ]] || usage; pack "$2" "$3" ;;
  --run) [[ $# -ge 2 ]] || usage; dir=$2; shift 2; run "$dir" "$@" ;;
  *) usage ;;
esac
