#!/usr/bin/env bash
# Starts or stops a Docker daemon for harness's images and container tests on a machine without
# systemd (Debian's docker.io: `dockerd` is there but nothing starts it).
#
#   docker/dockerd.sh start   start dockerd unless one already answers on the socket; waits until
#                             it answers (60 s at most). Records the pid it started in
#                             $HARNESS_DOCKERD_PIDFILE so that `stop` ends only that one.
#   docker/dockerd.sh stop    stop the dockerd that `start` started (by its recorded pid; a daemon
#                             started some other way is left alone), waiting for it to exit.
#   docker/dockerd.sh status  say whether a daemon answers.
#
# Environment: DOCKER_HOST-less socket path HARNESS_DOCKER_SOCKET (default /var/run/docker.sock),
# HARNESS_DOCKERD_PIDFILE (default /var/run/harness-dockerd.pid), HARNESS_DOCKERD_LOG (default
# /var/log/harness-dockerd.log).
set -euo pipefail

socket=${HARNESS_DOCKER_SOCKET:-/var/run/docker.sock}
pidfile=${HARNESS_DOCKERD_PIDFILE:-/var/run/harness-dockerd.pid}
logfile=${HARNESS_DOCKERD_LOG:-/var/log/harness-dockerd.log}

log() { printf 'dockerd.sh: %s\n' "$*" >&2; }

answers() {
  # GET /_ping over the unix socket: "OK" when the daemon serves.
  [[ -S "$socket" ]] && [[ "$(curl -sS --max-time 5 --unix-socket "$socket" http://localhost/_ping 2>/dev/null)" == OK ]]
}

case "${1:-}" in
  start)
    if answers; then
      log "a daemon already answers on $socket; not starting another"
      exit 0
    fi
    command -v dockerd >/dev/null || { log "dockerd not found: apt-get install docker.io"; exit 1; }
    log "starting dockerd (log $logfile)"
    # setsid: its own session, so it outlives this script and the caller's terminal. Its own
    # --pidfile is written by dockerd itself; we record the pid we started in ours.
    setsid dockerd --host "unix://$socket" >>"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    for _ in $(seq 1 600); do
      if answers; then
        log "dockerd (pid $pid) answers on $socket"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        log "dockerd (pid $pid) exited; last lines of $logfile:"
        tail -n 20 "$logfile" >&2
        rm -f "$pidfile"
        exit 1
      fi
      sleep 0.1
    done
    log "dockerd (pid $pid) did not answer on $socket within 60 s; see $logfile"
    exit 1
    ;;
  stop)
    if [[ ! -f "$pidfile" ]]; then
      log "no $pidfile: this script started no dockerd; nothing to stop"
      exit 0
    fi
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == dockerd ]]; then
      log "stopping dockerd (pid $pid)"
      kill -TERM "$pid"
      for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then
        log "dockerd (pid $pid) still runs after 30 s: SIGKILL"
        kill -KILL "$pid"
      fi
    else
      log "pid $pid from $pidfile is not a running dockerd"
    fi
    rm -f "$pidfile"
    ;;
  status)
    if answers; then log "a daemon answers on $socket"; else log "no daemon answers on $socket"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
