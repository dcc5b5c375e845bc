#!/usr/bin/env bash
# Throughput against agents: harness (`load_gen --mode stream --agents M`) and BullMQ (1 worker
# x M, bench/peers/bullmq) alternated per agent count, no-op work, then a data file and an SVG
# plot of items/s against M (gnuplot). Not the issue's table (bench/compare.sh): its curve.
#
# usage: bench/scaling.sh --build DIR [--items N] [--agents LIST] [--passes P]
#                         [--peers bullmq|none] [--out DIR] [--plot FILE.svg]
#
#   --build DIR       a build tree with controller/controller and bench/load_gen
#   --items N         no-op items per run (default 20000)
#   --agents LIST     a comma list of agent counts (default 1,4,16,64,256)
#   --passes P        passes over the list (default 1); the plot shows the mean of the passes
#                     and the min-max range as error bars
#   --peers P         bullmq (default): each harness run is followed by BullMQ
#                     `bench.sh --items N --workers 1 --concurrency M --work noop`;
#                     none: harness only (no redis-server or npm needed)
#   --out DIR         where the raw JSON lines (raw.jsonl), each run's stdout (NAME.json) and
#                     stderr (NAME.log), scaling.dat and the plot go (default: a new temp dir)
#   --plot FILE.svg   the SVG to write (default: OUT/scaling.svg)
#
# Needs python3 and gnuplot (apt-get install -y gnuplot-nox); with BullMQ also node/npm (the kit
# installs its pinned packages on first use) and redis-server (apt-get install -y redis-server).
# Each run starts its own servers on 127.0.0.1 and stops them by PID. A run that fails is noted,
# its point is left out of the plot, and the script exits 1 at the end.
set -euo pipefail

prog=bench/scaling.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)   # physical: git finds the checkout
usage() { sed -n '6,19s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
bad_usage() { echo "$prog: $*" >&2; echo "usage: $prog --build DIR [--items N] [--agents LIST] [--passes P] [--peers bullmq|none] [--out DIR] [--plot FILE.svg]" >&2; exit 2; }
log() { echo "$prog: $*" >&2; }
die() { echo "$prog: error: $*" >&2; exit 1; }

build="" items=20000 agents=1,4,16,64,256 passes=1 peers=bullmq out="" plot=""
need_value() { [ $# -ge 2 ] || bad_usage "$1 needs a value"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) need_value "$@"; build=$2; shift 2 ;;
    --items) need_value "$@"; items=$2; shift 2 ;;
    --agents) need_value "$@"; agents=$2; shift 2 ;;
    --passes) need_value "$@"; passes=$2; shift 2 ;;
    --peers) need_value "$@"; peers=$2; shift 2 ;;
    --out) need_value "$@"; out=$2; shift 2 ;;
    --plot) need_value "$@"; plot=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) bad_usage "unknown argument \"$1\"" ;;
  esac
done
[ -n "$build" ] || bad_usage "--build DIR is required"
[[ $items =~ ^[1-9][0-9]{0,6}$ ]] || bad_usage "--items must be a positive integer, got \"$items\""
[[ $agents =~ ^[1-9][0-9]{0,3}(,[1-9][0-9]{0,3})*$ ]] || bad_usage "--agents must be a comma list of counts 1-9999, got \"$agents\""
[[ $passes =~ ^[1-9]$ ]] || bad_usage "--passes must be 1-9, got \"$passes\""
case "$peers" in bullmq|none) ;; *) bad_usage "--peers must be bullmq or none, got \"$peers\"" ;; esac
[ -z "$plot" ] || [[ $plot == *.svg ]] || bad_usage "--plot must name a .svg file, got \"$plot\""

[ -d "$build" ] || die "build dir \"$build\" does not exist"
build=$(cd "$build" && pwd)
for b in controller/controller bench/load_gen; do
  [ -x "$build/$b" ] || die "missing $build/$b (cmake --build $build -j2 --target controller load_gen)"
done
command -v python3 >/dev/null || die "python3 is needed (the data file)"
command -v gnuplot >/dev/null || die "gnuplot is needed for the plot: apt-get install -y gnuplot-nox"
if [ "$peers" = bullmq ]; then
  command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for BullMQ (or --peers none)"
  command -v redis-server >/dev/null || die "redis-server is needed for BullMQ: apt-get install -y redis-server (or --peers none)"
fi

if [ -z "$out" ]; then
  out=$(mktemp -d "${TMPDIR:-/tmp}/harness-scaling.XXXXXX") || die "cannot make a temp dir"
else
  mkdir -p "$out"
fi
out=$(cd "$out" && pwd)
[ -n "$plot" ] || plot=$out/scaling.svg
mkdir -p "$(dirname "$plot")"
log "output folder: $out"
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
  log "$name: $(( SECONDS - t0 )) s (load average $(cut -d' ' -f1 /proc/loadavg)): $(grep '^{' "$out/$name.json" | tail -n 1 | cut -c1-160)"
}

commit=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)
started=$(date -u +%FT%TZ)
echo "{\"started\":\"$started\",\"host\":\"$(uname -n)\",\"cores\":$(nproc),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"items\":$items,\"agents\":\"$agents\",\"passes\":$passes,\"peers\":\"$peers\",\"commit\":\"$commit\"}" >"$out/meta.json"
: >"$out/raw.jsonl"
t_all=$SECONDS
for p in $(seq 1 "$passes"); do
  log "pass $p of $passes (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "{\"pass\":$p,\"at\":\"$(date -u +%FT%TZ)\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$out/passes.jsonl"
  for m in ${agents//,/ }; do
    run "p$p-m$m-harness" "$build/bench/load_gen" --controller-bin "$build/controller/controller" \
      --mode stream --agents "$m" --items "$items"
    if [ "$peers" = bullmq ]; then
      run "p$p-m$m-bullmq" "$here/peers/bullmq/bench.sh" --items "$items" --workers 1 \
        --concurrency "$m" --work noop
    fi
  done
done
log "all runs done in $(( SECONDS - t_all )) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"

# The data file: one row per agent count; per system the mean, min and max items/s over the
# passes (NaN where every run failed: gnuplot leaves the point out).
python3 - "$out" "$agents" "$passes" "$peers" <<'PY' >"$out/scaling.dat"
import json, os, sys

out, agents, passes, peers = sys.argv[1], sorted({int(a) for a in sys.argv[2].split(",")}), int(sys.argv[3]), sys.argv[4]
systems = ["harness"] + (["bullmq"] if peers == "bullmq" else [])
meta = json.load(open(os.path.join(out, "meta.json")))

def ips(name):
    """items_per_s of a run's last JSON line, or None (failed, missing or no figure)."""
    path = os.path.join(out, name + ".json")
    if os.path.exists(os.path.join(out, name + ".failed")) or not os.path.exists(path):
        return None
    rows = [l for l in open(path) if l.startswith("{")]
    try:
        v = json.loads(rows[-1]).get("items_per_s") if rows else None
    except ValueError:
        return None
    return None if v is None else float(v)

print(f"# bench/scaling.sh, {meta['started']}, commit {meta['commit']}, {meta['cores']} cores, "
      f"load average {meta['loadavg']} at the start; {meta['items']} no-op items per run, {passes} pass(es)")
print("# agents " + " ".join(f"{s}_mean {s}_min {s}_max" for s in systems) + "  (items/s; then each pass)")
for m in agents:
    cols, each = [], []
    for s in systems:
        v = [ips(f"p{p}-m{m}-{s}") for p in range(1, passes + 1)]
        got = [x for x in v if x is not None]
        cols += [f"{sum(got) / len(got):.0f}", f"{min(got):.0f}", f"{max(got):.0f}"] if got else ["NaN"] * 3
        each.append(s + " " + "/".join("-" if x is None else f"{x:.0f}" for x in v))
    print(f"{m} " + " ".join(cols) + "  # " + "; ".join(each))
PY
cat "$out/scaling.dat" >&2

# The plot: items/s against agents (log scale), one line per system, error bars over passes.
title="no-op items/s against agents, $items items per run ($started, commit $commit, $(nproc) cores)"
series="'$out/scaling.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'harness (load\\_gen --mode stream, M agents)'"
if [ "$peers" = bullmq ]; then
  series+=", '' using 1:5:6:7 with yerrorlines lw 2 pt 5 title 'BullMQ 6.7 (1 worker x M)'"
fi
m_min=$(tr ',' '\n' <<<"$agents" | sort -n | head -n 1)
m_max=$(tr ',' '\n' <<<"$agents" | sort -n | tail -n 1)
gnuplot <<GP || die "gnuplot failed to render $plot"
set terminal svg size 760,440 font "sans,12" background "white"
set output "$plot"
set title "$title" font "sans,11"
set xlabel "agents (M)"
set ylabel "items/s"
set logscale x 2
set xtics (${agents})
set xrange [$m_min.0/1.4:$m_max.0*1.4]
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set grid
set key below
set datafile missing "NaN"
plot $series
GP
log "data: $out/scaling.dat; plot: $plot"

failed=$(cd "$out" && ls -- *.failed 2>/dev/null | sed 's/\.failed$//' | tr '\n' ' ') || true   # ls: 2 when none failed
if [ -n "$failed" ]; then
  log "runs that failed (left out of the plot; see NAME.log in $out): $failed"
  exit 1
fi
