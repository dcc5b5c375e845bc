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
VOLUME /var/lib/harness
WORKDIR /var/lib/harness
ENTRYPOINT ["/usr/bin/tini", "--", "controller"]
CMD ["--state-dir", "/var/lib/harness/state", "--listen", "0.0.0.0:50051"]
