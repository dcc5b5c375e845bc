#!/usr/bin/env bash
# deploy_files_test.sh BUILD_DIR SOURCE_DIR: the steps of docs/DEPLOY.md in a scratch root.
#   1. `cmake --install` (DESTDIR=root) puts the binaries, units, completion and examples where
#      DEPLOY.md says;
#   2. `systemd-analyze verify --root` accepts both units without a word (PID 1 need not be
#      systemd: verify loads the units offline; --root makes it find the installed binaries),
#      and a misspelled key in a copy is reported (so silence means something);
#   3. `systemd-analyze security --offline` rates both units' exposure at most 2.5 (OK);
#   4. the certificates, tokens and config of DEPLOY.md go into root/etc/harness, and the
#      units' own ExecStart lines, with the root's paths, run: the controller's (with
#      --listen/--state-dir/--repo/--agents 1 added: nothing here can bind 0.0.0.0:7070 or write
#      /var/lib) serves TLS with mTLS and tokens, its launched agent and an agentd started by
#      harness-agentd@'s ExecStart and agentd.env connect, and SIGTERM stops it with exit 0.
# Processes started here are ended by pid.
set -uo pipefail
build=$(realpath "$1") src=$(realpath "$2")

fails=0
fail() { printf 'FAIL: %s\n' "$*"; fails=$((fails + 1)); }
tmp=$(mktemp -d)
root=$tmp/root
pids=()
cleanup() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null
    wait "${pids[i]}" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

command -v systemd-analyze >/dev/null || {
  echo "FAIL: systemd-analyze not found (Debian: apt-get install systemd; scripts/install-deps.sh does)"
  exit 1
}

# --- 1. install ------------------------------------------------------------------------------
DESTDIR=$root cmake --install "$build" --prefix /usr/local >"$tmp/install.log" 2>&1 ||
  { fail "cmake --install failed: $(cat "$tmp/install.log")"; exit 1; }
for f in usr/local/bin/controller usr/local/bin/agentd usr/local/bin/harnessctl \
  usr/local/lib/systemd/system/harness-controller.service \
  usr/local/lib/systemd/system/harness-agentd@.service \
  usr/local/share/bash-completion/completions/harnessctl \
  usr/local/share/doc/harness/harness.production.yaml \
  usr/local/share/doc/harness/agentd.env usr/local/share/doc/harness/DEPLOY.md; do
  [[ -e $root/$f ]] || fail "cmake --install did not install /$f"
done

# --- 2. systemd-analyze verify ---------------------------------------------------------------
# What verify needs from the host: systemd's own units (targets the units name) and the
# programs the units run (ExecReload's /bin/kill).
mkdir -p "$root/usr/lib/systemd" "$root/bin" "$root/etc/harness"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp /bin/kill "$root/bin/kill"
verify() { systemd-analyze verify --man=no --root="$root" "$@" 2>&1; }
out=$(verify harness-controller.service harness-agentd@agent-1.service)
rc=$?
[[ $rc == 0 && -z $out ]] || fail "systemd-analyze verify (exit $rc): $out"
# The same check on a copy with a misspelled key and a missing binary must complain.
sed -e 's/^KillMode=/KilMode=/' -e 's|/usr/local/bin/controller|/usr/local/bin/controler|' \
  "$root/usr/local/lib/systemd/system/harness-controller.service" \
  >"$root/usr/local/lib/systemd/system/harness-broken.service"
out=$(verify harness-broken.service)
grep -q "Unknown key 'KilMode'" <<<"$out" || fail "verify did not report a misspelled key: $out"
grep -q "controler is not executable" <<<"$out" || fail "verify did not report a missing binary: $out"
rm "$root/usr/local/lib/systemd/system/harness-broken.service"

# --- 3. systemd-analyze security -------------------------------------------------------------
for unit in harness-controller.service harness-agentd@agent-1.service; do
  systemd-analyze security --offline=true --root="$root" --threshold=25 "$unit" \
    >"$tmp/security.txt" 2>&1 ||
    fail "$unit: exposure over 2.5: $(grep 'Overall exposure' "$tmp/security.txt")"
  echo "$unit: $(grep -o 'Overall exposure level.*' "$tmp/security.txt")"
done

# --- 4. the units' command lines, with certificates, tokens and the production config -------
etc=$root/etc/harness
bash "$src/scripts/make-certs.sh" "$etc/tls" --host controller.example.internal >/dev/null ||
  fail "make-certs.sh failed"
mkdir -p "$etc/tokens"
for role in admin read agent; do openssl rand -hex 32 >"$etc/tokens/$role"; done
cp "$root/usr/local/share/doc/harness/harness.production.yaml" "$etc/harness.yaml"
cp "$root/usr/local/share/doc/harness/agentd.env" "$etc/agentd.env"

# ExecStart= of UNIT, the root's paths in place of /usr/local, /etc/harness and %S (/var/lib).
exec_start() {
  sed -n 's/^ExecStart=//p' "$root/usr/local/lib/systemd/system/$1" |
    sed -e "s|/usr/local/|$root/usr/local/|g" -e "s|/etc/harness/|$etc/|g" -e "s|%S|$tmp/var-lib|g"
}
read -ra controller_cmd <<<"$(exec_start harness-controller.service)"
[[ ${controller_cmd[0]} == "$root/usr/local/bin/controller" ]] ||
  fail "unexpected controller ExecStart: ${controller_cmd[*]}"
"${controller_cmd[@]}" --print-config >"$tmp/print-config.txt" 2>&1 ||
  fail "the unit's controller command refuses the production config: $(cat "$tmp/print-config.txt")"

# The loader is strict on this very file: one key it does not know and it is refused.
sed 's/^  limits:$/  limits:\n    max_bogus: 1/' "$etc/harness.yaml" >"$etc/bogus.yaml"
out=$("$root/usr/local/bin/controller" --config "$etc/bogus.yaml" --print-config 2>&1)
rc=$?
[[ $rc == 2 && $out == *'unknown key "max_bogus" in harness.limits'* ]] ||
  fail "an unknown key in the production config was not refused (exit $rc): $out"

# A repository for the controller (owned by this user, as the unit's would be by harness).
git init -q -b main "$tmp/repo" && git -C "$tmp/repo" -c user.name=t -c user.email=t@t \
  commit -q --allow-empty -m init || fail "git init failed"
"${controller_cmd[@]}" --listen 127.0.0.1:0 --state-dir "$tmp/state" --repo "$tmp/repo" \
  --agents 1 >"$tmp/controller.out" 2>"$tmp/controller.log" &
controller_pid=$!
pids+=("$controller_pid")
addr=""
for _ in $(seq 1 1500); do  # up to 30 s
  addr=$(sed -n 's/^listening on //p' "$tmp/controller.out")
  [[ -n $addr ]] && break
  kill -0 "$controller_pid" 2>/dev/null || break
  sleep 0.02
done
if [[ -z $addr ]]; then
  fail "the controller did not serve: $(cat "$tmp/controller.log")"
  exit 1
fi

ctl=("$root/usr/local/bin/harnessctl" --controller "$addr" --ca "$etc/tls/ca.pem"
  --cert "$etc/tls/admin.pem" --key "$etc/tls/admin.key")
"${ctl[@]}" status >/dev/null 2>"$tmp/err.txt" &&
  fail "status without a token was answered"
grep -q -i "token\|unauthenticated" "$tmp/err.txt" ||
  fail "status without a token: unexpected error: $(cat "$tmp/err.txt")"
"${ctl[@]:0:3}" --token-file "$etc/tokens/read" status >/dev/null 2>"$tmp/err.txt" &&
  fail "status without TLS was answered"

# harness-agentd@remote-1, from its ExecStart and agentd.env (HARNESS_CONTROLLER pointed at
# the controller; the rest as shipped, with the root's paths).
sed -i -e "s|^HARNESS_CONTROLLER=.*|HARNESS_CONTROLLER=$addr|" -e "s|/etc/harness/|$etc/|g" \
  "$etc/agentd.env"
agentd_line=$(exec_start harness-agentd@.service | sed 's/%i/remote-1/g')
mkdir -p "$tmp/var-lib/harness-agentd/remote-1"
(
  set -a
  # shellcheck source=/dev/null
  source "$etc/agentd.env"
  set +a
  # systemd's expansion: ${VAR} as one word, $VAR split at blanks.
  line=${agentd_line//'${HARNESS_CONTROLLER}'/$HARNESS_CONTROLLER}
  line=${line//'$AGENTD_ARGS'/$AGENTD_ARGS}
  read -ra cmd <<<"$line"
  exec "${cmd[@]}"
) >"$tmp/agentd.log" 2>&1 &
pids+=($!)

# Both agents connect: agent-1 (launched with agent.tls_* and the agent token) and remote-1.
agents=""
for _ in $(seq 1 1500); do  # up to 30 s
  agents=$("${ctl[@]}" --token-file "$etc/tokens/read" agents 2>&1)
  grep -q '^agent-1 .* healthy' <<<"$agents" && grep -q '^remote-1 .* healthy' <<<"$agents" && break
  sleep 0.02
done
grep -q '^agent-1 .* healthy' <<<"$agents" ||
  fail "the launched agent did not connect: $agents $(cat "$tmp/state/agents/agent-1/agentd.log" 2>/dev/null)"
grep -q '^remote-1 .* healthy' <<<"$agents" ||
  fail "harness-agentd@remote-1 did not connect: $agents $(cat "$tmp/agentd.log")"

# The read token cannot change anything; the admin token can.
"${ctl[@]}" --token-file "$etc/tokens/read" scale 1 >/dev/null 2>&1 && fail "scale with the read token worked"
"${ctl[@]}" --token-file "$etc/tokens/admin" scale 1 >/dev/null 2>"$tmp/err.txt" ||
  fail "scale with the admin token failed: $(cat "$tmp/err.txt")"

# SIGTERM, as systemd's KillMode=process sends it: exit 0, the launched agent gone with it.
agent_pid=$(sed -n 's/^pid=//p' "$tmp/state/agents/agent-1/pid" 2>/dev/null)
kill -TERM "$controller_pid"
wait "$controller_pid"
rc=$?
[[ $rc == 0 ]] || fail "the controller exited $rc on SIGTERM: $(tail -5 "$tmp/controller.log")"
if [[ -n $agent_pid ]] && kill -0 "$agent_pid" 2>/dev/null; then
  fail "the launched agent (pid $agent_pid) outlived a clean stop"
fi

if ((fails > 0)); then
  printf '%d check(s) failed\n' "$fails"
  exit 1
fi
echo "all deployment checks passed"
