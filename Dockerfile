# One image for every Guichet component: `docker run guichet services.identity` (or `… migrate`).
# Multi-stage: uv builds the locked environment; the runtime stage has no build tools, runs as a
# non-root user and writes nowhere but /tmp.

FROM python:3.12-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependencies first (cached while only the code changes), without the dev group.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY proto ./proto
COPY services ./services
COPY workflows ./workflows
COPY web ./web
# The gettext catalogs compiled to .mo (not committed; Babel is a runtime dependency).
RUN find web services -name '*.po' -path '*/LC_MESSAGES/*' \
      -exec sh -c '.venv/bin/pybabel compile --use-fuzzy -i "$1" -o "${1%.po}.mo"' _ {} \;
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:3.12-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 guichet \
 && useradd --system --uid 10001 --gid guichet --no-create-home --shell /usr/sbin/nologin guichet
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["services.gateway"]
