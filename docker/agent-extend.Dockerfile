# An agent image with more tools in it: extend harness-agent with Debian packages (and, if you
# like, an agent CLI from npm). It is built FROM the local image, so no registry is involved; the
# packages come from the Debian mirror the base image was bootstrapped from, so build it with the
# host's network:
#
#   docker build --network host -f docker/agent-extend.Dockerfile \
#     --build-arg AGENT_IMAGE=harness-agent:0.1.0 --build-arg PACKAGES="jq" \
#     -t harness-agent-jq:0.1.0 docker/
#
# For a real agent CLI, e.g. one published on npm: PACKAGES="nodejs npm" and
# NPM_PACKAGES="<the CLI's npm package>"; then point the launcher at the new image (its agentd and
# tini entrypoint are unchanged) and set agent.command to the CLI.
ARG AGENT_IMAGE=harness-agent:0.1.0
FROM ${AGENT_IMAGE}
ARG PACKAGES=""
ARG NPM_PACKAGES=""
RUN set -eu; \
    if [ -n "$PACKAGES" ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES; \
      rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    if [ -n "$NPM_PACKAGES" ]; then npm install -g $NPM_PACKAGES; fi
