#!/usr/bin/env bash
# Regenerates docs/dashboard.png and docs/dashboard-item.png from a busy, realistic run: a local
# controller (http.listen on 127.0.0.1, port 0) launches 5 agents whose command is a stand-in
# for a coding agent (prints what it reads, tests and edits; takes 10-40 s; some items fail once
# and are retried, a few always fail and are parked), items arrive in waves every minute, and
# after MINUTES minutes build/tests/bin/page_shot (headless chromium) takes the pictures.
#
#   bash scripts/dashboard-screenshot.sh              # ~5.5 minutes; build/ must hold the binaries
#   HARNESS_SHOT_MINUTES=8 bash scripts/dashboard-screenshot.sh [OUT_DIR]   # default: docs/
#
# Needs the targets controller agentd harnessctl page_shot in build/ and Debian's chromium.
# Everything it starts is stopped by pid on exit; its folder is removed unless it failed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(realpath -m "${1:-$repo/docs}")
minutes=${HARNESS_SHOT_MINUTES:-5}
bin=$repo/build
for b in controller/controller agentd/agentd client/harnessctl tests/bin/page_shot; do
  [[ -x "$bin/$b" ]] || { echo "dashboard-screenshot: $bin/$b is missing: cmake --build build --target controller agentd harnessctl page_shot" >&2; exit 1; }
done
work=$(mktemp -d /tmp/dashboard-shot.XXXXXX)
pid=""
cleanup() {
  local rc=$?
  [[ -n "$pid" ]] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  if [[ $rc -eq 0 ]]; then rm -rf "$work"; else echo "dashboard-screenshot: failed; see $work" >&2; fi
}
trap cleanup EXIT

git init -q -b main "$work/repo"
mkdir -p "$work/repo/src"
printf '# shop\n' >"$work/repo/README.md"
printf 'export function login() {}\n' >"$work/repo/src/auth.ts"
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=Dev -c user.email=dev@example.com commit -q -m base

# The stand-in agent: a few lines of output spread over its run, a change in the worktree.
cat >"$work/agent.sh" <<'SH'
#!/bin/sh
n=$(printf '%s' "$HARNESS_ITEM_ID" | cksum | cut -d' ' -f1)
step=$((2 + n % 8))
area=$(echo "auth cart checkout search api ui billing profile" | cut -d' ' -f$((1 + n % 8)))
echo "Reading the task: $HARNESS_ITEM_TITLE"; sleep "$step"
echo "Searching src/$area for the relevant code (14 files)"; sleep "$step"
echo "Running npm test -- $area: $((20 + n % 30)) passed, 1 failed"; sleep "$step"
case "$HARNESS_ITEM_ID" in
  *-flaky-*) echo "Error: tests in src/$area/e2e.spec.ts timed out" >&2; exit 1 ;;
  *-retry-*) [ "$HARNESS_ATTEMPT" = 1 ] && { echo "Error: npm ERR! network timeout" >&2; exit 1; } ;;
esac
echo "Editing src/$area/index.ts (+$((3 + n % 40)) -$((n % 12)))"
mkdir -p "src/$area" && echo "// $HARNESS_ITEM_TITLE" >>"src/$area/index.ts"; sleep "$step"
echo "Running npm test -- $area: $((21 + n % 30)) passed"
echo "Done: $HARNESS_ITEM_TITLE"
SH
chmod +x "$work/agent.sh"
cat >"$work/harness.yaml" <<YAML
harness:
  listen: 127.0.0.1:0
  state_dir: state
  parallel_agents: 5
  agent_startup_stagger: 0.3
  repo:
    path: repo
  agent:
    launcher: process
    command: ["$work/agent.sh"]
  queue:
    max_attempts: 2
  http:
    listen: 127.0.0.1:0
YAML

# Items in waves: wave W brings its own count, so the queue's depth rises and falls.
titles=("Fix the login redirect loop" "Add rate limiting to the search API" "Cart total ignores discounts"
  "Upgrade the payment SDK" "Profile page crashes without an avatar" "Checkout button double-submits"
  "Paginate the order history" "Cache product images" "Billing emails use the wrong locale"
  "Remove the legacy session cookie" "Search ranks out-of-stock items first" "Flaky e2e test in checkout"
  "Validate postal codes" "Dark mode for the settings page" "Log slow SQL queries")
wave() {  # wave NUMBER COUNT
  local w=$1 count=$2 sep="" kind i t
  {
    echo "["
    for i in $(seq 1 "$count"); do
      kind=task; ((i % 7 == 3)) && kind=retry; ((i % 11 == 5)) && kind=flaky
      t=${titles[$(((w * 5 + i) % ${#titles[@]}))]}
      echo "$sep{\"id\": \"w$w-$kind-$i\", \"title\": \"$t\", \"prompt\": \"$t. Keep the change small and add a test.\", \"priority\": $(((w + i) % 3))}"
      sep=","
    done
    echo "]"
  } >"$work/wave-$w.json"
  "$bin/client/harnessctl" submit --file "$work/wave-$w.json" >/dev/null
}

cd "$work"
"$bin/controller/controller" --config harness.yaml >controller.out 2>controller.log &
pid=$!
for _ in $(seq 1 100); do [[ -s state/http.addr && -s state/controller.addr ]] && break; sleep 0.1; done
export HARNESS_CONTROLLER=$(cat state/controller.addr)
url="http://$(cat state/http.addr)"
echo "dashboard-screenshot: controller at $HARNESS_CONTROLLER, dashboard at $url, $minutes minutes"
sizes=(28 12 20 6 16 10 18 8)
for w in $(seq 0 $((minutes - 1))); do
  wave "$w" "${sizes[$((w % ${#sizes[@]}))]}"
  sleep 60
done
wave "$minutes" 14   # the last wave: a long pending list in the picture

shot() { "$bin/tests/bin/page_shot" --width 1400 --height 900 "$@"; }
# Every agent on an item with some output, the chart drawn.
shot --url "$url/" --out "$out/dashboard.png" --fit --max-height 1300 --timeout 60 --wait "
  document.querySelector('#conn').textContent === 'live' &&
  document.querySelectorAll('#agents tr[data-agent] td.item a').length === 5 &&
  ![...document.querySelectorAll('#agents td.output, #agents td.elapsed')].some(c => c.textContent === '—') &&
  document.querySelectorAll('.chart rect').length > 0"
# An item retried after a failed attempt, done, with its log.
item=$("$bin/client/harnessctl" items --state done --json | grep -o '"id": "w[0-9]*-retry-[0-9]*"' | head -1 | cut -d'"' -f4)
shot --url "$url/#/item/$item" --out "$out/dashboard-item.png" --fit --max-height 1300 --wait "
  document.querySelectorAll('#item-detail tr[data-attempt]').length === 2 &&
  document.querySelector('#log').textContent.includes('Done:')"
ls -l "$out/dashboard.png" "$out/dashboard-item.png"
