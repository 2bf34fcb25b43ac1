# syntax=docker/dockerfile:1
# The vmgen operator image: the `vmgen` package and its runtime dependencies only (no test extras, no
# testbed), run as the unprivileged uid 65532 (the chart's runAsUser) with a read-only root filesystem.
#   docker build -t <registry>/vmgen:0.1.0 .
# Behind a TLS-intercepting proxy, hand pip the CA bundle to trust as a build secret: it is mounted for
# the one RUN that installs and never written to a layer (docs/image.md).
#   docker build --secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt -t <registry>/vmgen:0.1.0 .
# `make test` builds it with buildah on a local stand-in for PYTHON_IMAGE (operator/vmgen_testbed/image.py).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# python3, not python: the name both the official image and Debian's python3 package provide.
RUN python3 -m venv /opt/vmgen
WORKDIR /src
# Only what the wheel needs: the operator package (not operator/vmgen_testbed) and the CRD it ships.
COPY pyproject.toml README.md ./
COPY crds/ crds/
COPY operator/vmgen/ operator/vmgen/
# pip and setuptools leave with the build: the operator never installs anything at run time.
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
 && /opt/vmgen/bin/pip install . \
 && /opt/vmgen/bin/pip uninstall --yes pip setuptools \
 && /opt/vmgen/bin/vmgen --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vmgen" \
      org.opencontainers.image.description="Kubernetes operator that turns running Azure VMs into generalized image sources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# asyncssh asks for the local user name: give uid 65532 a passwd entry (and USER for getpass).
RUN groupadd --gid 65532 vmgen \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin vmgen
# Same base image, same interpreter path: the virtualenv moves over as is.
COPY --from=build /opt/vmgen /opt/vmgen
# MALLOC_ARENA_MAX=2: glibc gives each thread (the Kubernetes client's worker threads) its own malloc
# arena, which keeps freed memory as RSS; two arenas are enough for one event loop (docs/benchmarks.md).
ENV USER=vmgen \
    MALLOC_ARENA_MAX=2 \
    PATH=/opt/vmgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
# 8080: Prometheus metrics (--metrics-port), 8081: kopf's liveness endpoint (the chart's defaults).
EXPOSE 8080 8081
ENTRYPOINT ["vmgen", "run"]
