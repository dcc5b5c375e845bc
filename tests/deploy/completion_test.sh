#!/usr/bin/env bash
# completion_test.sh COMPLETION HARNESSCTL CONTROLLER AGENTD: the harnessctl bash completion
# (deploy/bash-completion/harnessctl) offers exactly the commands and flags harnessctl's --help
# lists (so the two cannot drift), values after the flags that take one and none after those
# that do not, and the item and agent ids of a live controller (started here on 127.0.0.1:0,
# ended by pid).
set -uo pipefail
completion=$(realpath "$1") ctl=$(realpath "$2") controller=$(realpath "$3") agentd=$(realpath "$4")

fails=0
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
check_eq() {  # NAME EXPECTED ACTUAL (sorted lists, one item a line)
  if [[ $2 != "$3" ]]; then
    fail "$1"
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/    /'
  fi
}

tmp=$(mktemp -d)
pids=()
cleanup() {
  local i
  # The agent first (--shutdown-grace 0: it stops its command at once), then the controller.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null
    wait "${pids[i]}" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
cd "$tmp" || exit 1  # file completions see an empty folder

# shellcheck source=/dev/null
source "$completion" || { echo "FAIL: cannot source $completion"; exit 1; }
complete -p harnessctl >/dev/null || fail "the script does not register a completion for harnessctl"

# comp LINE: what the completion offers at the end of LINE, sorted, one a line. COMP_WORDS is
# split the way bash splits it (blanks, and ':' and '=' as words of their own).
comp() {
  COMP_LINE=$1
  COMP_POINT=${#1}
  local spaced=${1//:/ : }
  spaced=${spaced//=/ = }
  read -ra COMP_WORDS <<<"$spaced"
  [[ $1 == *[[:blank:]] ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _harnessctl
  ((${#COMPREPLY[@]})) && printf '%s\n' "${COMPREPLY[@]}" | sort
}

# help_flags TEXT: the flags of a --help text's "flags:" section, sorted.
help_flags() { sed -n '/^flags:/,$p' <<<"$1" | grep -oE '^  --[a-z-]+' | tr -d ' ' | sort; }
# help_value_flags TEXT: those that take a value.
help_value_flags() { sed -n '/^flags:/,$p' <<<"$1" | grep -oE '^  --[a-z-]+ VALUE' | grep -oE -- '--[a-z-]+' | sort; }

# --- drift: commands and flags against --help ------------------------------------------------
top=$("$ctl" --help) || fail "harnessctl --help failed"
commands=$(sed -n '/^commands:/,/^$/p' <<<"$top" | grep -oE '^  [a-z]+' | tr -d ' ' | sort -u)
[[ -n $commands ]] || fail "no commands found in harnessctl --help"
check_eq "commands offered = commands of harnessctl --help" "$commands" "$(comp "harnessctl ")"
check_eq "global flags offered = flags of harnessctl --help" "$(help_flags "$top")" \
  "$(comp "harnessctl --")"

for cmd in $commands; do
  text=$("$ctl" "$cmd" --help) || { fail "harnessctl $cmd --help failed"; continue; }
  # A positional first where the command takes one, so flags are what comes next.
  pos=""
  case $cmd in show | cancel | retry | logs | drain | stop) pos="x " ;; scale) pos="3 " ;; esac
  check_eq "flags offered after '$cmd' = flags of harnessctl $cmd --help" "$(help_flags "$text")" \
    "$(comp "harnessctl $cmd $pos--")"
  values=$(help_value_flags "$text")
  for flag in $(help_flags "$text"); do
    after=$(comp "harnessctl $cmd $pos$flag ")
    if grep -qxF -- "$flag" <<<"$values"; then
      grep -q -- '^--' <<<"$after" && fail "$cmd $flag takes a value, yet flags are offered after it"
    else
      grep -qxF -- "--help" <<<"$after" || fail "$cmd $flag takes no value, yet flags are not offered after it"
    fi
  done
done

# --- a few command lines ---------------------------------------------------------------------
check_eq "'st' completes to status and stop" $'status\nstop' "$(comp "harnessctl st")"
check_eq "commands after a global flag and its value" "$commands" \
  "$(comp "harnessctl --controller 127.0.0.1:7070 --token-file t ")"
check_eq "states after --state" $'cancelled\ndone\nfailed\nleased\nparked\npending' \
  "$(comp "harnessctl items --state ")"
check_eq "the last state of a comma list" "pending,leased" "$(comp "harnessctl items --state pending,le")"
check_eq "a state after --state=" $'parked\npending' "$(comp "harnessctl items --state=p")"
touch prompt.md
check_eq "files after --prompt-file" "prompt.md" "$(comp "harnessctl submit --title t --prompt-file pr")"
check_eq "nothing for scale's number" "" "$(comp "harnessctl scale ")"

# An unreachable controller: no ids, nothing printed, and the completion returns.
out=$(comp "$ctl --controller 127.0.0.1:1 show " 2>&1)
check_eq "no ids and no output when the controller does not answer" "" "$out"

# --- ids from a live controller --------------------------------------------------------------
"$controller" --listen 127.0.0.1:0 --state-dir "$tmp/state" --agents 0 >"$tmp/controller.out" \
  2>"$tmp/controller.log" &
pids+=($!)
addr=""
for _ in $(seq 1 1000); do  # up to 20 s
  addr=$(sed -n 's/^listening on //p' "$tmp/controller.out")
  [[ -n $addr ]] && break
  sleep 0.02
done
[[ -n $addr ]] || { fail "the controller did not start: $(cat "$tmp/controller.log")"; exit 1; }
port=${addr##*:}

"$ctl" --controller "$addr" submit --id fail-1 --title f --prompt p --max-attempts 1 --priority 10 >/dev/null &&
  "$ctl" --controller "$addr" submit --id slow-1 --title s --prompt p --priority 5 >/dev/null &&
  "$ctl" --controller "$addr" submit --id wait-1 --title w --prompt p >/dev/null ||
  fail "submit failed"
# One agent: fail-1 fails at once (parked: one attempt), slow-1 runs, wait-1 waits.
"$agentd" --id worker-7 --controller "$addr" --workdir "$tmp/agent" --shutdown-grace 0 \
  --command "sh -c 'case \$HARNESS_ITEM_ID in fail-*) exit 3;; *) exec sleep 600;; esac'" \
  >"$tmp/agentd.log" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 1 1500); do  # up to 30 s
  if "$ctl" --controller "$addr" items --state parked | grep -q '^fail-1 ' &&
    "$ctl" --controller "$addr" items --state leased | grep -q '^slow-1 '; then
    ready=1
    break
  fi
  sleep 0.02
done
[[ -n $ready ]] || fail "the items did not reach parked/leased: $("$ctl" --controller "$addr" items)"

# As bash splits it: 127.0.0.1 : PORT.
on="$ctl --controller 127.0.0.1:$port"
check_eq "show offers every item" $'fail-1\nslow-1\nwait-1' "$(comp "$on show ")"
check_eq "show filters by the typed prefix" "slow-1" "$(comp "$on show sl")"
check_eq "cancel offers pending and leased items" $'slow-1\nwait-1' "$(comp "$on cancel ")"
check_eq "retry offers failed and parked items" "fail-1" "$(comp "$on retry ")"
check_eq "drain offers the agents" "worker-7" "$(comp "$on drain ")"
check_eq "stop offers the agents" "worker-7" "$(comp "$on stop w")"
check_eq "the address may follow the command" "worker-7" "$(comp "$ctl drain --controller=127.0.0.1:$port ")"
check_eq "flags, not ids, once the id is given" "--json" "$(comp "$on show slow-1 --j")"
# HARNESS_CONTROLLER is harnessctl's own default: the completion needs no flag then.
check_eq "ids through HARNESS_CONTROLLER" "worker-7" "$(HARNESS_CONTROLLER=$addr comp "$ctl stop ")"

if ((fails > 0)); then
  printf '%d check(s) failed\n' "$fails"
  exit 1
fi
echo "all completion checks passed"
