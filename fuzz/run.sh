#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each, two at a time on a 2-core
# machine) and prints what each found. Not part of CI's tests: run it by hand or nightly.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs cargo-fuzz (cargo install cargo-fuzz). On a stable toolchain RUSTC_BOOTSTRAP lets
# cargo fuzz pass its flags; without a sanitizer (-s none) it needs no nightly runtime. A crash
# is kept in fuzz/artifacts/TARGET/; turn it into a regression test beside the code it broke.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(scenario_toml http_response run_record swarm_form url_and_flags locustfile)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none -O
run() {
  local target=$1
  mkdir -p "corpus/$target" "artifacts/$target"
  # Seeds: real inputs to start from (a shard record, responses, the profiles, a form).
  [ ! -d "seeds/$target" ] || cp -n seeds/"$target"/* "corpus/$target/"
  [ "$target" != scenario_toml ] || cp -n ../scenarios/profiles/*.toml "corpus/$target/"
  [ "$target" != locustfile ] || cp -n ../locust/tests/locustfiles/*.py "corpus/$target/"
  if cargo fuzz run -s none -O "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="artifacts/$target/" >"artifacts/$target.log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "artifacts/$target.log" | tail -1 | grep -Eo '[0-9]+')
    echo "$target: no crash in ${runs:-?} runs over ${seconds} s"
  else
    echo "$target: FOUND A CRASH, see fuzz/artifacts/$target.log"
    grep -E "panicked|ERROR|SUMMARY" "artifacts/$target.log" | head -5
  fi
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run "${targets[i]}" &
  [ -z "${targets[i + 1]:-}" ] || run "${targets[i + 1]}" &
  wait
done
