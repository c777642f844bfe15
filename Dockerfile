# Surge operator image. Build from the repository root:
#   docker build -t surge-operator:dev .            (make docker-build builds all three images)
# One Python distribution holds the operator and the demo packages (pyproject.toml); only the runtime
# dependencies are installed (no dev extras). Runs as UID 10001 and writes nothing outside /tmp, so it works
# with readOnlyRootFilesystem and an emptyDir on /tmp (manifests/manager/manager.yaml mounts one).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY gameserver ./gameserver
COPY loadgen ./loadgen
RUN pip install . \
 && rm -rf /src \
 && groupadd --system --gid 10001 surge \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin surge

WORKDIR /
USER 10001:10001
# 8080: kopf's liveness endpoint (/healthz); 8081: the operator's /metrics (when --metrics-port is given).
EXPOSE 8080 8081
ENTRYPOINT ["surge"]
# Deployments pass their own args (manifests/kind adds --prometheus-url and --metrics-port).
CMD ["run", "--liveness", "http://0.0.0.0:8080/healthz"]
