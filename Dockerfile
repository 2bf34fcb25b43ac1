# syntax=docker/dockerfile:1
# The vmgen operator image: the `vmgen` package and its runtime dependencies only (no test extras, no
# testbed), run as the unprivileged uid 65532 with a read-only root filesystem (see charts/vmgen).
#   docker build -t <registry>/vmgen:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/vmgen
WORKDIR /src
# Only what the wheel needs: the operator package (not operator/vmgen_testbed) and the CRD it ships.
COPY pyproject.toml README.md ./
COPY crds/ crds/
COPY operator/vmgen/ operator/vmgen/
RUN /opt/vmgen/bin/pip install . \
 && /opt/vmgen/bin/vmgen --help > /dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vmgen" \
      org.opencontainers.image.description="Kubernetes operator that turns running Azure VMs into generalized image sources" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# Same base image, same interpreter path: the virtualenv moves over as is.
COPY --from=build /opt/vmgen /opt/vmgen
# asyncssh asks for the local user name: give uid 65532 a passwd entry (and USER for getpass).
RUN groupadd --gid 65532 vmgen && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin vmgen
ENV USER=vmgen \
    PATH=/opt/vmgen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["vmgen", "run"]
