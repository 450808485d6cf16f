# syntax=docker/dockerfile:1
# Omnirouter's image: the package installed from a wheel built in a first stage, run by a non-root
# user. Build: docker build -t omnirouter . ; run: docker run -p 8000:8000 -v omnirouter-data:/data omnirouter
# Settings come from OMNIROUTER_* variables (docs/configuration.md); docs/deploy.md shows the rest.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The package's wheel and those of its dependencies (all published as binary wheels: no compiler).
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMNIROUTER_HOST=0.0.0.0 \
    OMNIROUTER_PORT=8000 \
    OMNIROUTER_DATA_DIR=/data
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels omnirouter \
 && groupadd --system --gid 10001 omnirouter \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home omnirouter \
 && mkdir -p /data && chown omnirouter:omnirouter /data
USER 10001:10001
WORKDIR /data
# The SQLite database (without OMNIROUTER_DATABASE_URL), the journals of generations not yet in the
# database, an imported catalog.
VOLUME /data
EXPOSE 8000
# Liveness: the process answers. (Readiness, /health/ready, is for load balancers and Kubernetes.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('OMNIROUTER_PORT', '8000'), timeout=2)"]
# SIGTERM: refuse new connections, finish what is in flight within shutdown_timeout, flush, exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["omnirouter"]
CMD ["serve"]
