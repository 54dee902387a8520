# The console's image: web server, collector, and the demo's worker and traffic all run it.
#   docker compose up          (see docker-compose.yml)

# Front-end libraries come from the npm registry at pinned versions (package-lock.json).
FROM node:20-slim AS assets
WORKDIR /app
COPY . .
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund; else mkdir -p node_modules; fi

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=assets /app/node_modules ./node_modules
# collectstatic imports the settings, which want a secret key; this one exists only here.
RUN DJANGO_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0

RUN useradd --system --home-dir /app console && chown -R console /app
USER console
EXPOSE 8000
CMD ["uvicorn", "console.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
