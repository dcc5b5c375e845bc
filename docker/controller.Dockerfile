# The harness controller image: controller (and harnessctl) on the Debian 12 base that
# docker/build-images.sh made with debootstrap and imported (BASE). tini is PID 1 so SIGTERM
# reaches the controller (it stops granting, lets agents finish or release, exits 0).
# Keep the state dir on a volume: docker run -v harness-state:/var/lib/harness ...
ARG BASE
FROM ${BASE}
ARG VERSION
LABEL org.opencontainers.image.title="harness-controller" \
      org.opencontainers.image.version="${VERSION}"
COPY controller harnessctl /usr/local/bin/
# Writable by any uid (sticky, like /tmp): docker-compose runs the controller as the owner of
# the mounted repository (HARNESS_UID), and a new volume takes this mode.
RUN mkdir -p /var/lib/harness && chmod 1777 /var/lib/harness
VOLUME /var/lib/harness
WORKDIR /var/lib/harness
ENTRYPOINT ["/usr/bin/tini", "--", "controller"]
CMD ["--state-dir", "/var/lib/harness/state", "--listen", "0.0.0.0:50051"]
