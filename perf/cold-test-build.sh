#!/bin/bash
# Issue 18's acceptance number: `cargo test --no-run` from a cold target dir, before the
# layering merge (b0ee3f1^1) against a later revision, interleaved (before, after, before,
# after) so that a shared machine's load falls on both sides alike. The cargo registry must
# already be downloaded (runs are --offline). Prints each run's wall, user and system time.
#
#   perf/cold-test-build.sh [AFTER_REV] [ROUNDS]    # default: HEAD, 2 rounds
set -euo pipefail
after=${1:-HEAD}
rounds=${2:-2}
repo=$(git rev-parse --show-toplevel)
work=$(mktemp -d /tmp/cold-test-build.XXXXXX)
trap 'cd "$repo"; git worktree remove --force "$work/before" 2>/dev/null || true;
      git worktree remove --force "$work/after" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q --detach "$work/before" b0ee3f1^1
git -C "$repo" worktree add -q --detach "$work/after" "$after"
export CARGO_INCREMENTAL=0
for i in $(seq 1 "$rounds"); do
  for side in before after; do
    target="$work/target-$side"
    rm -rf "$target"
    (cd "$work/$side" && CARGO_TARGET_DIR="$target" /usr/bin/time -v \
      cargo test --offline --no-run >/dev/null 2>"$work/$side-$i.err") || true
    echo "$side run $i ($(cut -d' ' -f1-3 /proc/loadavg) load after):"
    grep -E "Elapsed|User time|System time|Exit status" "$work/$side-$i.err" | sed 's/^\s*/  /'
    rm -rf "$target"
  done
done
