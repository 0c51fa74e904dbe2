# syntax=docker/dockerfile:1
# Onetable (一表通) service image.
#   docker build -t onetable .
#   docker run -p 8000:8000 -v onetable-data:/data -e ONETABLE_SECRET_KEY=... onetable   # embedded PostgreSQL in /data/pg
#   docker run -p 8000:8000 -e ONETABLE_DATABASE_URL=postgresql://u:p@db/onetable \
#              -e ONETABLE_SECRET_KEY=... onetable                                 # a real server
# ONETABLE_SECRET_KEY (32+ random bytes, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)
# is required: the image has no built-in key and the container stops at once without one. Keep it
# the same across restarts and workers, or every login token becomes invalid.

# --- web: the UI (web/, Vue) built with Node; only web/dist goes into the image -----------------------
FROM node:20-slim AS web

WORKDIR /src/web
COPY web/package.json web/package-lock.json web/.npmrc ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
# The typed API client is generated from the contract at build time.
COPY schemas/openapi.json /src/schemas/openapi.json
RUN npm run build

# --- builder: dependencies from the lock, then the project (for the `onetable` command) ----------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY app/ app/
RUN pip install --no-deps .

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

# The code reads alembic.ini, migrations/, ledgers/ and schemas/ beside app/, so `app` is imported
# from /app (PYTHONPATH comes before site-packages), not from the copy pip put into the venv.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    ONETABLE_DATA_DIR=/data

RUN groupadd --system --gid 10001 onetable \
 && useradd --system --uid 10001 --gid onetable --home-dir /home/onetable --create-home \
            --shell /usr/sbin/nologin onetable \
 && mkdir -p /data \
 && chown onetable:onetable /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY alembic.ini ./
COPY app/ app/
COPY migrations/ migrations/
COPY ledgers/ ledgers/
COPY schemas/ schemas/
# Served at / by app/web.py (settings.web_dir defaults to /app/web/dist).
COPY --from=web /src/web/dist web/dist

USER onetable
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# SIGINT lets uvicorn shut down gracefully and Python run its exit handlers, which stop the embedded
# PostgreSQL cleanly (with ONETABLE_DATABASE_URL set there is none).
STOPSIGNAL SIGINT
# No key, no start (before touching the database); the app itself also refuses a short or known key.
CMD ["sh", "-c", ": \"${ONETABLE_SECRET_KEY:?ONETABLE_SECRET_KEY is required: 32+ random bytes, see the Dockerfile header}\" && onetable db upgrade && exec uvicorn app.main:create_app --factory --host 0.0.0.0 --port 8000"]
