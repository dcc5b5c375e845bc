#!/usr/bin/env bash
# Side by side with the peers: harness, BullMQ (bench/peers/bullmq) and graphile-worker
# (bench/peers/graphile-worker) run alternately in one sitting, two passes, then the table of
# issue 18 with ratios and targets. Every run's raw JSON line goes to the output folder.
#
# usage: bench/compare.sh --build DIR [--passes P] [--items N] [--exec-items M] [--only ROWS]
#                         [--out DIR]
#
#   --build DIR       a build tree with controller/controller, agentd/agentd,
#                     client/harnessctl, bench/load_gen, bench/idle_floor, bench/rpc_floor,
#                     bench/durable_floor and bench/kernel_costs
#   --passes P        passes over the rows (default 2)
#   --items N         no-op items of rows 1 and 2 (default 20000)
#   --exec-items M    items of rows 3 and 4 (default 2000)
#   --only ROWS       a comma list of the rows to run (default 1,2,3,4,5,6):
#                     1  no-op lifecycles/s, 16 agents: load_gen --mode stream --agents 16
#                        vs BullMQ 1 worker x 16 and graphile-worker 1 x 16; then what bounds
#                        it: 16 Session streams ping-ponging (load_gen --mode ping --agents 16),
#                        the 16-agent run on tmpfs, the controller's CPU per item and the
#                        context switches per item of the controller and of the agents
#                     2  the same with 1 agent vs BullMQ 1 x 1 and graphile-worker 1 x 1, and
#                        the fsync floor (1 / the mean commit round's sync time of that very run;
#                        also 1 / the whole round: journal write, syncs, answers); then what
#                        bounds it: a message's round trip on the Session stream (load_gen
#                        --mode ping) and the same 1-agent run with the state dir on tmpfs
#                        (/dev/shm: no disk), i.e. the per-item cost that is not the disk's, and
#                        the context switches per item of both processes
#                     3  exec /bin/true, 4 real agentd (bench/agents.sh --repo none)
#                        vs BullMQ 4 workers x 1 --work exec
#                     4  the same with --repo local: what the repository adds per item, in ms:
#                        to the agents' time beyond their command (their log lines), to the
#                        CPU per item, and from the throughputs (row 3's harness run is made
#                        for it when row 3 is not selected)
#                     5  agentd idle: VmRSS, PSS, USS and threads of one agentd registered and
#                        idle, beside the floor: bench/idle_floor (a bare gRPC C++ client from
#                        the same packages holding one idle Session stream) in the same sitting
#                     6  2,000 idle agents heartbeating once a second: the controller's CPU (% of
#                        one core) and RSS (load_gen --mode idle), beside the floor: a bare
#                        server that only acks the same heartbeats from as many streams
#                        (bench/rpc_floor --idle-seconds), on gRPC's callback API and on the
#                        completion-queue API with one thread
#   --out DIR         where the raw JSON lines, logs and the table go (default: a new temp dir)
#
# Before the passes, bench/kernel_costs prices what an item is made of on this machine (a system
# call, a thread hand-off, waking a thread that slept, a TCP message on 127.0.0.1, link+unlink
# and pwrite in /tmp); the line under the table quotes it. In each pass, each row runs harness
# first, then its peers. Needs python3, node/npm (the kits
# install their pinned packages on first use), redis-server and PostgreSQL 15
# (apt-get install -y redis-server postgresql). Servers listen on 127.0.0.1 only, at free ports;
# what this script starts itself (row 5) it stops by PID.
set -euo pipefail

prog=bench/compare.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
usage() { sed -n '6,/^#   --out DIR/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
bad_usage() { echo "$prog: $*" >&2; echo "usage: $prog --build DIR [--passes P] [--items N] [--exec-items M] [--only ROWS] [--out DIR]" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

build="" passes=2 items=20000 exec_items=2000 only=1,2,3,4,5,6 out=""
need_value() { [ $# -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need_value "$@"; build=$2; shift 2 ;;
    --passes) need_value "$@"; passes=$2; shift 2 ;;
    --items) need_value "$@"; items=$2; shift 2 ;;
    --exec-items) need_value "$@"; exec_items=$2; shift 2 ;;
    --only) need_value "$@"; only=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument \"$1\"" ;;
  esac
done
[ -n "$build" ] || bad_usage "--build DIR is required"
[[ $passes =~ ^[1-9]$ ]] || bad_usage "--passes must be 1-9, got \"$passes\""
[[ $items =~ ^[1-9][0-9]{0,6}$ ]] || bad_usage "--items must be a positive integer, got \"$items\""
[[ $exec_items =~ ^[1-9][0-9]{0,6}$ ]] || bad_usage "--exec-items must be a positive integer, got \"$exec_items\""
[[ $only =~ ^[1-6](,[1-6])*$ ]] || bad_usage "--only must be a comma list of 1-6, got \"$only\""
want() { [[ ,$only, == *,$1,* ]]; }

[ -d "$build" ] || die "build dir \"$build\" does not exist"
build=$(cd "$build" && pwd)
for b in controller/controller agentd/agentd client/harnessctl bench/load_gen bench/idle_floor \
  bench/kernel_costs; do
  [ -x "$build/$b" ] || die "missing $build/$b (cmake --build $build -j2 --target controller agentd harnessctl load_gen idle_floor kernel_costs)"
done
command -v python3 >/dev/null || die "python3 is needed (the table)"
if want 1 || want 2 || want 3; then
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the peers"
  command -v redis-server >/dev/null || die "redis-server is needed: apt-get install -y redis-server"
fi
if want 1 || want 2; then
  [ -x /usr/lib/postgresql/15/bin/postgres ] || die "PostgreSQL 15 is needed: apt-get install -y postgresql"
fi

if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/harness-compare.XXXXXX") || die "cannot make a temp dir"
else
  mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
log "output folder: $out"

# --- row 5's processes: ours, stopped by PID on any exit --------------------------------------
idle_pids=()
idle_tmp=""
stop_idle() {
  local pid
  for pid in "${idle_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
  done
  idle_pids=()
  [ -n "$idle_tmp" ] && rm -rf "$idle_tmp"
  idle_tmp=""
}
trap stop_idle EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# One run: NAME (the file stem in $out) and the command. Its stdout's JSON lines go to
# NAME.json (and raw.jsonl), its stderr to NAME.log. A failure is noted, not fatal.
run() {
  local name=$1; shift
  local t0=$SECONDS rc=0
  log "$name: $*"
  "$@" >"$out/$name.json" 2>"$out/$name.log" </dev/null || rc=$?
  if [ $rc != 0 ]; then
    log "$name: exit status $rc (see $out/$name.log): $(tail -n 2 "$out/$name.log" | tr '\n' ' ')"
    echo "$rc" >"$out/$name.failed"
  fi
  grep '^{' "$out/$name.json" | sed "s/^/{\"run\":\"$name\",\"line\":/; s/\$/}/" >>"$out/raw.jsonl" || true
  log "$name: $(( SECONDS - t0 )) s (load average $(cut -d' ' -f1 /proc/loadavg)): $(grep '^{' "$out/$name.json" | tail -n 1 | cut -c1-200)"
}

# Row 5: a controller (port 0, no pool, no repository), one agentd and bench/idle_floor (the
# floor: a bare gRPC client holding one idle Session stream to the same controller); once the
# agent shows idle, the floor says "connected" and 5 s more have passed, for each of them VmRSS,
# RssAnon, RssFile and Threads from /proc/PID/status, and PSS and USS (Private_Clean +
# Private_Dirty) from /proc/PID/smaps_rollup. PSS shares each library page among the processes
# that map it, so it falls as more agentds (or other gRPC processes) run on the machine.
memory_of() {   # PID PREFIX: "PREFIXrss_kb":..,... (no braces)
  awk -v p="$2" '
    FNR == NR && /^VmRSS:/ { rss = $2 } FNR == NR && /^RssAnon:/ { anon = $2 }
    FNR == NR && /^RssFile:/ { file = $2 } FNR == NR && /^Threads:/ { th = $2 }
    FNR != NR && /^Pss:/ { pss = $2 } FNR != NR && /^Private_(Clean|Dirty):/ { uss += $2 }
    END { printf "\"%srss_kb\":%d,\"%srss_anon_kb\":%d,\"%srss_file_kb\":%d,\"%spss_kb\":%d,\"%suss_kb\":%d,\"%sthreads\":%d",
          p, rss, p, anon, p, file, p, pss, p, uss, p, th }' "/proc/$1/status" "/proc/$1/smaps_rollup"
}
agentd_idle() {
  idle_tmp=$(mktemp -d "${TMPDIR:-/tmp}/harness-compare-idle.XXXXXX")
  local t=$idle_tmp
  printf 'harness:\n  listen: 127.0.0.1:0\n  state_dir: state\n  parallel_agents: 0\n  agent:\n    launcher: none\n    command: ["/bin/true"]\n' >"$t/harness.yaml"
  "$build/controller/controller" --config "$t/harness.yaml" >"$t/controller.out" 2>"$t/controller.log" &
  idle_pids+=($!)
  local cpid=$! start=$SECONDS
  until [ -s "$t/state/controller.addr" ]; do
    kill -0 "$cpid" 2>/dev/null || { cat "$t/controller.log" >&2; return 1; }
    [ $((SECONDS - start)) -lt 60 ] || { echo "controller not listening after 60 s" >&2; return 1; }
    sleep 0.05
  done
  local addr
  addr=$(head -n 1 "$t/state/controller.addr")
  "$build/agentd/agentd" --id idle-1 --controller "$addr" --workdir "$t/work" >"$t/agent.log" 2>&1 &
  local apid=$!
  "$build/bench/idle_floor" "$addr" >"$t/floor.out" 2>"$t/floor.log" &
  local fpid=$!
  idle_pids=("$apid" "$fpid" "${idle_pids[@]}")   # the agent and the floor stop first
  local st=""
  until grep -q '"state": *"idle"' <<<"$st"; do
    kill -0 "$apid" 2>/dev/null || { cat "$t/agent.log" >&2; return 1; }
    [ $((SECONDS - start)) -lt 60 ] || { echo "agentd not idle after 60 s" >&2; return 1; }
    sleep 0.1
    st=$("$build/client/harnessctl" --controller "$addr" status --json 2>/dev/null) || st=""
  done
  until grep -q '^connected' "$t/floor.out"; do
    kill -0 "$fpid" 2>/dev/null || { cat "$t/floor.log" >&2; return 1; }
    [ $((SECONDS - start)) -lt 60 ] || { echo "idle_floor not connected after 60 s" >&2; return 1; }
    sleep 0.1
  done
  sleep 5
  echo "{\"bench\":\"agentd_idle\",\"pid\":$apid,$(memory_of "$apid" ""),\"floor_pid\":$fpid,$(memory_of "$fpid" floor_)}"
  stop_idle
}

load_gen=("$build/bench/load_gen" --controller-bin "$build/controller/controller" --mode stream)
bullmq=("$here/peers/bullmq/bench.sh")
graphile=("$here/peers/graphile-worker/bench.sh")
agents=("$here/agents.sh" --build "$build" --agents 4 --items "$exec_items" --work true)
ceiling=("$build/bench/durable_floor" --dir /tmp)
one_items=$(( items < 5000 ? items : 5000 ))

t_all=$SECONDS
{
  echo "{\"started\":\"$(date -u +%FT%TZ)\",\"host\":\"$(uname -n)\",\"cores\":$(nproc),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"passes\":$passes,\"items\":$items,\"exec_items\":$exec_items,\"only\":\"$only\",\"commit\":\"$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)\"}"
} >"$out/meta.json"
run kernel-costs "$build/bench/kernel_costs" --dir /tmp
for p in $(seq 1 "$passes"); do
  log "pass $p of $passes (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "{\"pass\":$p,\"at\":\"$(date -u +%FT%TZ)\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$out/passes.jsonl"
  if want 1; then
    run "p$p-noop16-harness" "${load_gen[@]}" --agents 16 --items "$items"
    run "p$p-ping16-harness" "$build/bench/load_gen" --controller-bin "$build/controller/controller" --mode ping --agents 16 --items 40000
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
      run "p$p-noop16-tmpfs-harness" "${load_gen[@]}" --agents 16 --items "$items" --dir /dev/shm
    fi
    run "p$p-ceiling16-cq" "${ceiling[@]}" --api cq --streams 16 --items "$items"
    run "p$p-ceiling16-committer" "${ceiling[@]}" --api cq+committer --streams 16 --items "$items"
    run "p$p-ceiling16-beside" "${ceiling[@]}" --api cq+committer+callback --streams 16 --items "$items"
    run "p$p-ceiling16-callback" "${ceiling[@]}" --api callback --streams 16 --items "$items"
    run "p$p-noop16-bullmq" "${bullmq[@]}" --items "$items" --workers 1 --concurrency 16 --work noop
    run "p$p-noop16-graphile" "${graphile[@]}" --items "$items" --workers 1 --concurrency 16 --work noop
  fi
  if want 2; then
    run "p$p-noop1-harness" "${load_gen[@]}" --agents 1 --items "$items"
    run "p$p-ping-harness" "$build/bench/load_gen" --controller-bin "$build/controller/controller" --mode ping --agents 1 --items 5000
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
      run "p$p-noop1-tmpfs-harness" "${load_gen[@]}" --agents 1 --items "$items" --dir /dev/shm
    fi
    run "p$p-ceiling1-cq" "${ceiling[@]}" --api cq --streams 1 --items "$one_items"
    run "p$p-ceiling1-committer" "${ceiling[@]}" --api cq+committer --streams 1 --items "$one_items"
    run "p$p-ceiling1-beside" "${ceiling[@]}" --api cq+committer+callback --streams 1 --items "$one_items"
    run "p$p-ceiling1-callback" "${ceiling[@]}" --api callback --streams 1 --items "$one_items"
    run "p$p-noop1-bullmq" "${bullmq[@]}" --items "$items" --workers 1 --concurrency 1 --work noop
    run "p$p-noop1-graphile" "${graphile[@]}" --items "$items" --workers 1 --concurrency 1 --work noop
  fi
  if want 3; then
    run "p$p-exec-harness" "${agents[@]}" --repo none
    run "p$p-exec-bullmq" "${bullmq[@]}" --items "$exec_items" --workers 4 --concurrency 1 --work exec
  fi
  if want 4; then
    # Row 4's overhead is measured against row 3's harness run of the same pass.
    want 3 || run "p$p-exec-harness" "${agents[@]}" --repo none
    run "p$p-local-harness" "${agents[@]}" --repo local
  fi
  if want 5; then
    run "p$p-idle-harness" agentd_idle
    stop_idle
  fi
  if want 6; then
    run "p$p-idle2000-harness" "$build/bench/load_gen" --controller-bin "$build/controller/controller" --mode idle --agents 2000 --seconds 10
    run "p$p-idle2000-callback" "$build/bench/rpc_floor" --api callback --streams 2000 --idle-seconds 10
    run "p$p-idle2000-cq" "$build/bench/rpc_floor" --api cq --streams 2000 --idle-seconds 10
  fi
done
elapsed=$(( SECONDS - t_all ))
log "all runs done in $elapsed s"

python3 - "$out" "$passes" "$only" "$elapsed" <<'PY' | tee "$out/table.md"
import json, os, sys

out, passes, only, elapsed = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]

def line(name):
    """The last JSON line of a run, or None (failed or missing)."""
    path = os.path.join(out, name + ".json")
    if os.path.exists(os.path.join(out, name + ".failed")) or not os.path.exists(path):
        return None
    rows = [l for l in open(path) if l.startswith("{")]
    try:
        return json.loads(rows[-1]) if rows else None
    except ValueError:
        return None

def field(name, key):
    """A number from a run's JSON line, or None."""
    j = line(name)
    return None if j is None or j.get(key) is None else float(j[key])

def ips(name):
    return field(name, "items_per_s")

def num(v, digits=0):
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"

def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b

def rx(v):
    return "-" if v is None else f"{v:.2f}x"

def cells(values, fmt):
    return " / ".join(fmt(v) for v in values)

def met(oks):
    known = [o for o in oks if o is not None]
    if not known:
        return "-"
    n = sum(1 for o in known if o)
    return "yes" if n == len(known) == len(oks) else "no" if n == 0 else f"{n} of {len(oks)} passes"

P = range(1, passes + 1)
rows = []
if "1" in only:
    ours = [ips(f"p{p}-noop16-harness") for p in P]
    bq = [ips(f"p{p}-noop16-bullmq") for p in P]
    gw = [ips(f"p{p}-noop16-graphile") for p in P]
    rb = [ratio(o, b) for o, b in zip(ours, bq)]
    rg = [ratio(o, g) for o, g in zip(ours, gw)]
    rows.append(("no-op lifecycles/s, 16 agents (`load_gen --mode stream`) vs BullMQ 1 worker x 16; graphile-worker 1 x 16",
                 cells(ours, num), f"BullMQ {cells(bq, num)}; graphile {cells(gw, num)}",
                 f"{cells(rb, rx)}; {cells(rg, rx)}", ">= 1.2x BullMQ, >= 5x graphile",
                 met([None if a is None or b is None else a >= 1.2 and b >= 5 for a, b in zip(rb, rg)])))
    # What bounds it: not the stack's messaging (16 streams ping-ponging carry far more), not
    # only the disk (the tmpfs run): the controller's CPU per item, on cores shared with load_gen.
    ping16 = [field(f"p{p}-ping16-harness", "rounds_per_s") for p in P]
    tmpfs16 = [ips(f"p{p}-noop16-tmpfs-harness") for p in P]
    def cpu_ms(name):
        j = line(name)
        if j is None or not j.get("controller_cpu_s") or not j.get("items"):
            return None
        return 1000.0 * float(j["controller_cpu_s"]) / float(j["items"])
    ms_fmt = lambda v: "-" if v is None else f"{v:.3f} ms"
    sw_fmt = lambda v: "-" if v is None else f"{v:.2f}"
    def switches(name, per="item"):
        return (cells([field(name.format(p=p), f"controller_switches_per_{per}") for p in P], sw_fmt) +
                " and " + cells([field(name.format(p=p), f"agents_switches_per_{per}") for p in P], sw_fmt))
    rows.append(("16 agents, what bounds it: exchanges/s of 16 Session streams each ping-ponging a heartbeat (`load_gen --mode ping --agents 16`: what gRPC and both processes carry, no disk); the 16-agent run with the state dir on tmpfs (no disk); the controller's CPU per item; context switches per item of the controller and of load_gen's agents (ping: per exchange)",
                 f"ping {cells(ping16, num)}/s; tmpfs {cells(tmpfs16, num)}/s; controller CPU per item on disk {cells([cpu_ms(f'p{p}-noop16-harness') for p in P], ms_fmt)}, on tmpfs {cells([cpu_ms(f'p{p}-noop16-tmpfs-harness') for p in P], ms_fmt)}; switches per item {switches('p{p}-noop16-harness')} (ping {switches('p{p}-ping16-harness', 'round')})",
                 f"1.2x BullMQ = {cells([None if b is None else 1.2 * b for b in bq], num)}/s",
                 f"tmpfs {cells([ratio(t, b) for t, b in zip(tmpfs16, bq)], rx)} BullMQ", "-", "-"))
    # The ceilings (bench/durable_floor, no lease protocol, the same claims and syncs), each
    # against BullMQ's figure of the pass, and harness's share of one of them.
    def ceiling_row(text, runs, reached):
        figs = [(label, [ips(run.format(p=p)) for p in P]) for label, run in runs]
        of = dict(figs)[reached]
        pct0 = lambda v: "-" if v is None else f"{100 * v:.0f}%"
        rows.append((text,
                     "; ".join(f"{label} {cells(v, num)}/s" for label, v in figs),
                     f"1.2x BullMQ = {cells([None if b is None else 1.2 * b for b in bq], num)}/s",
                     ", ".join(f"{label} {cells([ratio(c, b) for c, b in zip(v, bq)], rx)}" for label, v in figs)
                     + f" BullMQ; harness reached {cells([ratio(o, c) for o, c in zip(ours, of)], pct0)} of the {reached} ceiling",
                     "-", "-"))
    # On gRPC's completion-queue API alone.
    ceiling_row("16 agents, the ceiling of any implementation: the cheapest durable server on this stack (`bench/durable_floor`: per item only the claim's `unlink`, `pwrite` and `link` and two journal records, group-committed with the journal's `fdatasync` and the `claims/` fsync; gRPC's completion-queue API), its one thread doing everything (reads, claims, the rounds' syncs, answers); and with the rounds on a committer thread, as the project's rule (no I/O on a thread others wait on) requires",
                [("one thread", "p{p}-ceiling16-cq"), ("committer", "p{p}-ceiling16-committer")], "committer")
    # With a callback service beside it (as the controller's other RPCs are), and on the
    # callback API itself: the ceiling of a controller built as this one is.
    ceiling_row("16 agents, the ceiling of a server that also serves other RPCs on gRPC's callback API (as the controller serves its 20 others, gRPC's health service and reflection): the committer ceiling beside one unused callback service (gRPC's callback threads then take turns at the one poller), and the same server on the callback API (`--api cq+committer+callback`, `--api callback`)",
                [("beside a callback service", "p{p}-ceiling16-beside"), ("callback API", "p{p}-ceiling16-callback")], "callback API")
if "2" in only:
    ours = [ips(f"p{p}-noop1-harness") for p in P]
    bq = [ips(f"p{p}-noop1-bullmq") for p in P]
    gw = [ips(f"p{p}-noop1-graphile") for p in P]
    def per_s(name, key):
        ms = field(name, key)
        return None if not ms else 1000.0 / ms
    floor = [per_s(f"p{p}-noop1-harness", "store_round_mean_ms") for p in P]
    whole = [per_s(f"p{p}-noop1-harness", "store_round_whole_mean_ms") for p in P]
    rf = [ratio(o, f) for o, f in zip(ours, floor)]
    rw = [ratio(o, f) for o, f in zip(ours, whole)]
    rb = [ratio(o, b) for o, b in zip(ours, bq)]
    rg = [ratio(o, g) for o, g in zip(ours, gw)]
    pct = lambda v: "-" if v is None else f"{100 * v:.0f}%"
    rows.append(("the same, 1 agent vs BullMQ 1 x 1; graphile-worker 1 x 1; fsync floor (1 / the mean commit round's sync time, same run; in brackets 1 / the whole round's time)",
                 cells(ours, num), f"BullMQ {cells(bq, num)}; graphile {cells(gw, num)}; floor {cells(floor, num)} ({cells(whole, num)})",
                 f"{cells(rb, rx)}; {cells(rg, rx)}; floor {cells(rf, pct)} ({cells(rw, pct)})",
                 ">= 75% of the floor, >= 2x graphile",
                 met([None if a is None or b is None else a >= 0.75 and b >= 2 for a, b in zip(rf, rg)])))
    # What bounds the 1-agent figure: each item is one commit round plus one message each way.
    rtt = [field(f"p{p}-ping-harness", "rtt_mean_ms") for p in P]
    ceil = [None if f is None or r is None else 1000.0 / (1000.0 / f + r) for f, r in zip(floor, rtt)]
    tmpfs = [ips(f"p{p}-noop1-tmpfs-harness") for p in P]
    rows.append(("1 agent, what bounds it: a message's round trip on the Session stream (`load_gen --mode ping`, mean); 1 / (sync time + round trip); the 1-agent run with the state dir on tmpfs (no disk) and its time per item",
                 f"round trip {cells(rtt, lambda v: '-' if v is None else f'{v:.3f} ms')}; tmpfs {cells(tmpfs, num)}/s = {cells([None if t is None else 1000.0 / t for t in tmpfs], lambda v: '-' if v is None else f'{v:.3f} ms')} per item; switches per item, controller and agent, {cells([field(f'p{p}-noop1-harness', 'controller_switches_per_item') for p in P], lambda v: '-' if v is None else f'{v:.1f}')} and {cells([field(f'p{p}-noop1-harness', 'agents_switches_per_item') for p in P], lambda v: '-' if v is None else f'{v:.1f}')}",
                 f"ceiling {cells(ceil, num)}", f"ceiling {cells([ratio(c, f) for c, f in zip(ceil, floor)], pct)} of the floor; reached {cells([ratio(o, c) for o, c in zip(ours, ceil)], pct)} of the ceiling",
                 "-", "-"))
    def share(name):
        return field(name, "share_of_floor")
    s1 = [share(f"p{p}-ceiling1-cq") for p in P]
    s2 = [share(f"p{p}-ceiling1-committer") for p in P]
    rows.append(("1 agent, the ceiling of any implementation (`bench/durable_floor --streams 1`, as in the 16-agent ceiling line): items/s, and the share of its own sync floor (1 / its rounds' mean sync time), one thread; with a committer thread",
                 f"one thread {cells([ips(f'p{p}-ceiling1-cq') for p in P], num)}/s, with a committer {cells([ips(f'p{p}-ceiling1-committer') for p in P], num)}/s",
                 "-", f"one thread {cells(s1, pct)} of its floor; with a committer {cells(s2, pct)}", ">= 75% of the floor", "-"))
    s3 = [share(f"p{p}-ceiling1-beside") for p in P]
    s4 = [share(f"p{p}-ceiling1-callback") for p in P]
    rows.append(("1 agent, the ceiling beside a callback service and on the callback API (as in the 16-agent line): items/s, and the share of its own sync floor",
                 f"beside {cells([ips(f'p{p}-ceiling1-beside') for p in P], num)}/s, callback API {cells([ips(f'p{p}-ceiling1-callback') for p in P], num)}/s",
                 "-", f"beside {cells(s3, pct)} of its floor; callback API {cells(s4, pct)}; against graphile-worker 1 x 1: committer ceiling {cells([ratio(ips(f'p{p}-ceiling1-committer'), g) for p, g in zip(P, gw)], rx)}, beside {cells([ratio(ips(f'p{p}-ceiling1-beside'), g) for p, g in zip(P, gw)], rx)}, callback API {cells([ratio(ips(f'p{p}-ceiling1-callback'), g) for p, g in zip(P, gw)], rx)}", ">= 75% of the floor, >= 2x graphile", "-"))
if "3" in only:
    ours = [ips(f"p{p}-exec-harness") for p in P]
    bq = [ips(f"p{p}-exec-bullmq") for p in P]
    rb = [ratio(o, b) for o, b in zip(ours, bq)]
    rows.append(("exec `/bin/true`, 4 real agentd (`bench/agents.sh --repo none`) vs BullMQ 4 workers x 1 (`--work exec`)",
                 cells(ours, num), f"BullMQ {cells(bq, num)}", cells(rb, rx), ">= 1.5x",
                 met([None if r is None else r >= 1.5 for r in rb])))
if "4" in only:
    local = [ips(f"p{p}-local-harness") for p in P]
    none = [ips(f"p{p}-exec-harness") for p in P]
    agents = 4

    def minus(a, b):
        return None if a is None or b is None else a - b

    # What the repository adds to an item, two ways that leave out the command's own run-to-run
    # spread: the agents' own per-item time beyond the command (their log lines), and the CPU
    # per item of the controller, the agents and their commands.
    beyond_n = [field(f"p{p}-exec-harness", "beyond_command_ms") for p in P]
    beyond_l = [field(f"p{p}-local-harness", "beyond_command_ms") for p in P]
    cpu_n = [field(f"p{p}-exec-harness", "cpu_ms_per_item") for p in P]
    cpu_l = [field(f"p{p}-local-harness", "cpu_ms_per_item") for p in P]
    share = [minus(l, n) for l, n in zip(beyond_l, beyond_n)]
    cpu_share = [minus(l, n) for l, n in zip(cpu_l, cpu_n)]
    # And from throughputs (one agent runs one item at a time: agents / items/s per item),
    # which carries the command's spread as well.
    over = [None if l is None or n is None else 1000.0 * agents / l - 1000.0 * agents / n
            for l, n in zip(local, none)]
    ms = lambda v: "-" if v is None else f"{v:.1f} ms"
    signed = lambda v: "-" if v is None else f"{v:+.1f} ms"
    rows.append(("the same with `--repo local` (worktree reset + commit check per item): items/s; what the repository adds per item: to the agent's time beyond its command (from the agents' logs: acquired to completed, minus the command's run), to the CPU per item (controller, agents and commands), and from the throughputs (4 / items/s, local minus none)",
                 f"{cells(local, num)} items/s; beyond the command {cells(beyond_n, ms)} -> {cells(beyond_l, ms)}: {cells(share, signed)}; "
                 f"CPU {cells(cpu_n, ms)} -> {cells(cpu_l, ms)}: {cells(cpu_share, signed)}; throughputs {cells(over, signed)}",
                 "-", "-", "< 5 ms per item (time and CPU)",
                 met([None if a is None or c is None else (a < 5 and c < 5)
                      for a, c in zip(share, cpu_share)])))
if "5" in only:
    idle = [line(f"p{p}-idle-harness") for p in P]

    def mem(j, p=""):
        if j is None or j.get(p + "rss_kb") is None:
            return "-"
        mb = lambda k: j[p + k] / 1024.0
        return (f"{mb('rss_kb'):.1f} MB ({mb('rss_anon_kb'):.1f} anon), PSS {mb('pss_kb'):.1f}, "
                f"USS {mb('uss_kb'):.1f} MB, {j[p + 'threads']} threads")

    rss = [None if j is None else j["rss_kb"] / 1024.0 for j in idle]
    floor = [None if j is None or not j.get("floor_rss_kb") else j["floor_rss_kb"] / 1024.0 for j in idle]
    rows.append(("agentd idle: VmRSS (of which anonymous), PSS, USS, threads; beside the floor: bench/idle_floor, a bare gRPC C++ client holding one idle Session stream",
                 " / ".join(mem(j) for j in idle),
                 "floor " + " / ".join(mem(j, "floor_") for j in idle),
                 "RSS " + cells([ratio(r, f) for r, f in zip(rss, floor)], rx) + " of the floor",
                 "<= 12 MB RSS", met([None if r is None else r <= 12 for r in rss])))

if "6" in only:
    pct1 = lambda v: "-" if v is None else f"{v:.1f}%"
    ours = [field(f"p{p}-idle2000-harness", "controller_cpu_pct_of_one_core") for p in P]
    mb = [field(f"p{p}-idle2000-harness", "controller_rss_mb") for p in P]
    hb = [field(f"p{p}-idle2000-harness", "heartbeats_per_s") for p in P]
    cb = [field(f"p{p}-idle2000-callback", "server_cpu_pct_of_one_core") for p in P]
    cq = [field(f"p{p}-idle2000-cq", "server_cpu_pct_of_one_core") for p in P]
    rows.append(("2,000 idle agents, each a Session stream heartbeating once a second (`load_gen --mode idle --agents 2000`): the controller's CPU in % of one core, its RSS, heartbeats acknowledged/s; beside the floor, a bare server that only acks the same heartbeats (`bench/rpc_floor --idle-seconds 10 --streams 2000`), on gRPC's callback API and on the completion-queue API with one thread",
                 f"{cells(ours, pct1)}; {cells(mb, lambda v: '-' if v is None else f'{v:.0f} MB')}; {cells(hb, num)}/s",
                 f"floor: callback API {cells(cb, pct1)}, completion queue {cells(cq, pct1)}",
                 f"{cells([ratio(o, c) for o, c in zip(ours, cb)], rx)} of the callback floor",
                 "< 25% of one core, < 200 MB",
                 met([None if o is None or m is None else o < 25 and m < 200 for o, m in zip(ours, mb)])))

meta = json.load(open(os.path.join(out, "meta.json")))
loads = [json.loads(l) for l in open(os.path.join(out, "passes.jsonl"))]
print(f"bench/compare.sh, {meta['started']}, commit {meta['commit']}, {meta['cores']} cores; "
      f"{passes} passes (figures: pass 1 / pass 2 ...), {elapsed} s in all; load average (1/5/15 min) at each pass's start: "
      + "; ".join(f"{l['pass']}: {l['loadavg']}" for l in loads) + f"; raw lines in {out}/raw.jsonl")
print()
print("| figure | harness | peer in the same sitting | ratio | target | met |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
k = line("kernel-costs")
if k is not None:
    print()
    print(f"What this machine charges (`bench/kernel_costs`, in us): a system call {k['syscall_us']}, "
          f"a thread hand-off {k['handoff_us']} ({k['handoff_one_core_us']} on one core), "
          f"waking a thread that slept 1 ms {k.get('wake_idle_us', '-')} (median), "
          f"a 100-byte TCP message on 127.0.0.1 {k['tcp_message_us']}, link+unlink {k['link_unlink_us']} "
          f"and a 200-byte pwrite {k['pwrite_us']} in {k['dir']}.")
PY
failed=$(cd "$out" && ls -- *.failed 2>/dev/null | sed 's/\.failed$//' | tr '\n' ' ') || true   # ls: 2 when none failed
if [ -n "$failed" ]; then
  log "runs that failed (their cells show -; see NAME.log in $out): $failed"
  exit 1
fi
