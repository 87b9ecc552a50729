# syntax=docker/dockerfile:1
#
# One image for everything rabbitsync runs: the operator, the consumer sidecar runtime and the example
# services. Entrypoints (the manifests set command and workingDir explicitly; none relies on CMD):
#
#   operator   rabbitsync-operator                                      (manifests/operator)
#   service    python -m gunicorn -c python:common.serving <svc>.wsgi     workingDir /app/services/<svc>
#   migrations python manage.py migrate --noinput                        same workingDir (initContainer)
#   sidecar    python manage.py rabbitsync_sidecar                      same workingDir (the operator injects it)
#
# <svc> is restaurant, restaurant-menu or order. Python dependencies are pinned in constraints.txt.
# Build: docker build -t rabbitsync:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# -- deps: a virtualenv holding the pinned dependencies, in a stage of its own ---------------------
# constraints.txt pins the whole runtime closure, so this layer is rebuilt only when the pins change:
# a change to the sources reuses it (`--target deps` builds just this stage).
FROM ${PYTHON_IMAGE} AS deps
# PIP_CONSTRAINT holds every install below to the pins.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
RUN python -m venv /opt/venv
COPY constraints.txt ./
RUN /opt/venv/bin/pip install --requirement constraints.txt \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# -- build: the package itself, over the dependencies ---------------------------------------------
FROM deps AS build
COPY pyproject.toml README.md ./
COPY operator ./operator
# One image runs every part: the operator and the CLI (their extras pull kopf and kubernetes), the
# sidecar and the example services (`django`, served by gunicorn: `services`). psycopg[binary] (the
# `postgres` extra) lets services use DATABASE_URL=postgres://... Every dependency has a wheel for amd64
# and arm64: no compiler in the image. The deps stage installed them all, the build backend too: with
# no index, this step fails if constraints.txt misses one, rather than fetch it unpinned.
RUN /opt/venv/bin/pip install --no-index --no-build-isolation ".[operator,django,cli,postgres,services]" \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# -- runtime ------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rabbitsync" \
      org.opencontainers.image.description="Kubernetes operator keeping Django services' data in sync over RabbitMQ" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric user, so that `runAsNonRoot` can verify it and fsGroup 10001 matches the manifests.
RUN groupadd --system --gid 10001 rabbitsync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin rabbitsync
# No .pyc writes (read-only root filesystem), unbuffered logs; `python` is the virtualenv's;
# services/common (helpers the example services share) is importable from any service directory.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/services
COPY --from=build /opt/venv /opt/venv
# Root-owned and read-only for the service user: SQLite files go to a volume (SQLITE_PATH=/data/...).
COPY services /app/services
WORKDIR /app
USER 10001:10001
# 8000 services, 8080 operator health, 8088 sidecar health and metrics.
EXPOSE 8000 8080 8088
CMD ["rabbitsync-operator"]
