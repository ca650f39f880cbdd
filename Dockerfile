# The registry as a container: waits for DATABASE_URL (default: SQLite in the /app/var volume),
# migrates it under the startup lock, seeds an empty database unless SEED_ON_START=0, and serves
# on 0.0.0.0:8000 with WEB_CONCURRENCY uvicorn workers (compose.yaml: Postgres, 2 replicas, nginx).
#
# The base image is pinned by digest (python:3.11-slim, the multi-arch index digest as published
# for library/python; this machine cannot query a registry, so refresh it with
# `docker buildx imagetools inspect python:3.11-slim` when you next build).
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- build: the locked runtime dependencies into /opt/venv with uv; the project itself is
# installed editable, pointing at /app, where migrate.py finds alembic.ini and migrations/ ----
FROM ${PYTHON_IMAGE} AS build
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY migrations ./migrations
COPY service ./service
RUN uv sync --frozen --no-dev

# --- runtime: the environment and the code, no uv, no build tools, a numeric non-root user ----
FROM ${PYTHON_IMAGE} AS runtime
ARG GIT_REVISION=""
LABEL org.opencontainers.image.title="leukemia-outcomes-registry" \
      org.opencontainers.image.description="Typed HTTP service for clinical study data of acute leukemia therapies" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${GIT_REVISION}" \
      org.opencontainers.image.licenses="Proprietary"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HOST=0.0.0.0 \
    PORT=8000 \
    GIT_REVISION=${GIT_REVISION}
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/alembic.ini /app/alembic.ini
COPY --from=build /app/migrations /app/migrations
COPY --from=build /app/service /app/service
RUN mkdir -p /app/var && chown 10001:10001 /app/var
VOLUME ["/app/var"]
USER 10001:10001
EXPOSE 8000
# serve drains requests in flight on SIGTERM (SHUTDOWN_GRACE_SECONDS); give `docker stop -t` more.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"]
ENTRYPOINT ["registry"]
CMD ["serve"]
