# The harness agent image: agentd (and harnessctl) on the Debian 12 base that
# docker/build-images.sh made with debootstrap and imported (BASE). Built by that script; see
# docker/README.md. tini is PID 1, so `docker stop` (SIGTERM) reaches agentd, which finishes or
# releases its item, and zombies of the agent's commands are reaped.
ARG BASE
FROM ${BASE}
ARG VERSION
LABEL org.opencontainers.image.title="harness-agent" \
      org.opencontainers.image.version="${VERSION}"
COPY agentd harnessctl harness-agent-start /usr/local/bin/
# agentd's default --workdir (./harness-agent-<id>) lands here; writable by any uid (sticky),
# for agents run as the repository's owner (docker-compose.repo.yml, HARNESS_UID).
RUN mkdir -p /var/lib/harness-agent && chmod 1777 /var/lib/harness-agent
WORKDIR /var/lib/harness-agent
ENTRYPOINT ["/usr/bin/tini", "--"]
# The launcher gives the full command: agentd --id agent-N --controller HOST:PORT [...].
# docker-compose runs `harness-agent-start --controller HOST:PORT`, which finds a stable id per
# replica (docker/harness-agent-start.sh).
CMD ["agentd", "--help"]
