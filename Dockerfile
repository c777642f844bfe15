# Surge operator image. Build from the repository root:
#   docker build -t surge-operator:dev .            (make docker-build builds all three images)
# Dependencies come only from requirements/operator.lock (every package pinned with its sha256 hashes; pip
# refuses anything else), then the project itself without resolving anything (--no-deps). Runtime
# dependencies only: no dev or plots extras. Runs as UID/GID 65532, the runAsUser/runAsGroup of
# manifests/manager, and writes nothing outside /tmp, so it works with readOnlyRootFilesystem and an
# emptyDir on /tmp (manifests/manager/manager.yaml mounts one).
# The base image is pinned to a Python patch release on Debian 12; pin its digest (@sha256:...) too where
# your registry policy asks for it.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp

WORKDIR /src
COPY requirements/operator.lock ./requirements.lock
RUN pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY gameserver ./gameserver
COPY loadgen ./loadgen
RUN pip install --no-deps . \
 && rm -rf /src \
 && groupadd --system --gid 65532 surge \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin surge

WORKDIR /
USER 65532:65532
# 8080: the liveness endpoint (/healthz); 8081: the operator's /metrics (--metrics-port,
# --metrics-bind-address).
EXPOSE 8080 8081
ENTRYPOINT ["surge"]
# Deployments pass their own args (manifests/manager: --leader-elect, --liveness, --metrics-port, ...).
CMD ["run", "--liveness", "http://0.0.0.0:8080/healthz"]
