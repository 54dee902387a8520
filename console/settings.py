"""Settings for the console, read from the environment (documented in .env.example)."""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required unless DJANGO_DEBUG=true")
    SECRET_KEY = "insecure-debug-only-key"  # noqa: S105 (only with DJANGO_DEBUG=true)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tasks_admin",
    # The demo's tasks (a stand-in for a monitored production app); harmless when unused.
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a signed-in user; views opt out with @login_not_required (health).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "console.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tasks_admin.context_processors.console_role",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/console")
# Connections come from a pool (psycopg's, through Django). Under ASGI each request's sync
# code runs in a thread of its own: connections kept per thread (CONN_MAX_AGE) are never
# reused and pile up past PostgreSQL's max_connections at 200 requests/s, and opening one
# per request costs the web process and PostgreSQL a backend each time. The pool lends a
# connection per request and takes it back at the request's end. DATABASE_POOL_MAX_SIZE=0
# turns it off (a connection per request, for an external pooler such as PgBouncer).
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 16)
# Health checks: the pool tests a connection before lending it, so after a failover or a
# terminated backend a request gets a fresh connection instead of an error.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)
}
if DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        # A request that finds every connection lent waits this long, then fails.
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 10.0),
    }
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/1")
# Names the live updates' pub/sub channels and Redis keys. Pub/sub channels are shared by
# all databases of a Redis server: two consoles on one server need different prefixes.
CHANNEL_LAYER_PREFIX = env_str("CHANNEL_LAYER_PREFIX", "console")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": CHANNEL_LAYER_PREFIX},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "tasks_admin:login"
LOGIN_REDIRECT_URL = "tasks_admin:dashboard"
LOGOUT_REDIRECT_URL = "tasks_admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Front-end libraries come from the npm registry at pinned versions (package.json, `npm ci`)
# and are served by the app from node_modules: no CDN, no vendored copies in the repository.
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/htmx-ext-ws", NODE_MODULES / "htmx-ext-ws" / "dist"),
    ("vendor/uplot", NODE_MODULES / "uplot" / "dist"),
]

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

# --- Celery: the console's own app (control calls, the demo). JSON only, UTC. ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_EVENT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue the dead-letter hook (tasks_admin.deadletter, installed in console/celery.py for
# the demo's tasks) publishes the original message of every task that dies to.
CELERY_DEADLETTER_QUEUE = env_str("CELERY_DEADLETTER_QUEUE", "celery.deadletter")

# --- The collector (python manage.py collect) ---
# Events per database transaction, and how long a batch that is not full waits for more
# (a few larger transactions cost far less than many tiny ones; this is added to the lag).
CONSOLE_BATCH_SIZE = env_int("CONSOLE_BATCH_SIZE", 2000)
CONSOLE_BATCH_SECONDS = env_float("CONSOLE_BATCH_SECONDS", 0.1)
# Writer threads, each with its own database connection; a task's events always go to the
# same one. Two let PostgreSQL work on one batch while the next is prepared.
CONSOLE_WRITERS = env_int("CONSOLE_WRITERS", 2)
# Raw bytes the receiver may hold while the database is slow or away; past it, events drop
# (counted and logged) rather than the process running out of memory.
CONSOLE_BUFFER_MAX_BYTES = env_int("CONSOLE_BUFFER_MAX_BYTES", 512 * 1024 * 1024)
CONSOLE_ENABLE_EVENTS_INTERVAL = env_float("CONSOLE_ENABLE_EVENTS_INTERVAL", 5.0)
CONSOLE_INSPECT_INTERVAL = env_float("CONSOLE_INSPECT_INTERVAL", 30.0)
CONSOLE_QUEUE_SAMPLE_INTERVAL = env_float("CONSOLE_QUEUE_SAMPLE_INTERVAL", 5.0)
CONSOLE_RECONCILE_INTERVAL = env_float("CONSOLE_RECONCILE_INTERVAL", 10.0)
# A result-backend row younger than this is left alone: its real event is usually on its way.
CONSOLE_RECONCILE_GRACE = env_float("CONSOLE_RECONCILE_GRACE", 60.0)
# Queue names to watch besides those workers report consuming.
CONSOLE_QUEUES = env_list("CONSOLE_QUEUES", "")
# RabbitMQ only: the durable queue the collector binds to the celeryev exchange, so events
# wait in the broker (instead of a 5 s TTL auto-delete queue) while the collector is away.
CONSOLE_EVENT_QUEUE = env_str("CONSOLE_EVENT_QUEUE", "celeryev.console")
CONSOLE_EVENT_QUEUE_MAX_LENGTH = env_int("CONSOLE_EVENT_QUEUE_MAX_LENGTH", 5_000_000)
# Longest string kept per field (tracebacks can be megabytes); longer ones are cut, marked.
CONSOLE_MAX_FIELD_CHARS = env_int("CONSOLE_MAX_FIELD_CHARS", 65536)
# Live updates: how often the collector pushes what changed to open pages (0: never), and
# how often the costlier parts (runtime percentiles, failures, unchanged detail pages).
CONSOLE_LIVE_INTERVAL = env_float("CONSOLE_LIVE_INTERVAL", 0.5)
CONSOLE_LIVE_SLOW_INTERVAL = env_float("CONSOLE_LIVE_SLOW_INTERVAL", 10.0)
# History older than this many days is pruned once a day by the collector (0: never).
CONSOLE_RETENTION_DAYS = env_int("CONSOLE_RETENTION_DAYS", 30)
# Dead-letter queues the collector drains into the dead letters page: the hook's queue and
# any RabbitMQ queue bound to a dead-letter exchange (x-dead-letter-exchange).
CONSOLE_DEADLETTER_QUEUES = env_list("CONSOLE_DEADLETTER_QUEUES", "celery.deadletter")
CONSOLE_DEADLETTER_INTERVAL = env_float("CONSOLE_DEADLETTER_INTERVAL", 1.0)
# Redis only: seconds before a dead letter taken but not acknowledged (the collector died
# between its commit and its ack) is delivered again. Redis keeps such messages in a hash
# of the collector's own, apart from the workers' unacked tasks.
CONSOLE_DEADLETTER_VISIBILITY_TIMEOUT = env_float("CONSOLE_DEADLETTER_VISIBILITY_TIMEOUT", 60.0)
# Argument names (keyword arguments, and dict keys at any depth inside arguments) whose
# values pages and the API show as [redacted]. Stored values are untouched (replays stay
# faithful).
CONSOLE_REDACT_ARGS = env_list("CONSOLE_REDACT_ARGS", "")

# --- The advisor and alerts (run by the collector) ---
# Seconds between advisor runs (every check against the broker and history; 0: never).
CONSOLE_ADVISOR_INTERVAL = env_float("CONSOLE_ADVISOR_INTERVAL", 60.0)
# How far back the checks look at history (failures, runtimes, ETAs), in seconds.
CONSOLE_ADVISOR_WINDOW_SECONDS = env_float("CONSOLE_ADVISOR_WINDOW_SECONDS", 3600.0)
# A task running longer than this on a worker without time limits is reported.
CONSOLE_ADVISOR_LONG_TASK_SECONDS = env_float("CONSOLE_ADVISOR_LONG_TASK_SECONDS", 300.0)
# Peak memory growth (MB) of a worker without a per-child limit that counts as a leak.
CONSOLE_ADVISOR_MEMORY_GROWTH_MB = env_float("CONSOLE_ADVISOR_MEMORY_GROWTH_MB", 100.0)
# Seconds between evaluations of the alert rules (0: never).
CONSOLE_ALERT_INTERVAL = env_float("CONSOLE_ALERT_INTERVAL", 15.0)
# The console's address, for the link in alert notices (e.g. https://celery.example.com).
CONSOLE_BASE_URL = env_str("CONSOLE_BASE_URL", "")
# Alert email goes through Django's mail settings.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "celery-console@localhost")
# The collector sends alert email from its main loop: a mail server that hangs must not.
EMAIL_TIMEOUT = 10
# --- Actions ---
# The most tasks one bulk revoke or retry may touch; a filter matching more is refused.
CONSOLE_BULK_MAX = env_int("CONSOLE_BULK_MAX", 1000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- The REST API (/api/v1/, Flower's /api/, /metrics) ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tasks_admin.api.auth.BearerTokenAuthentication",
        "tasks_admin.api.auth.ApiSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tasks_admin.api.auth.HasRole"],
    "DEFAULT_THROTTLE_CLASSES": ["tasks_admin.api.auth.ApiThrottle"],
    "DEFAULT_RENDERER_CLASSES": [
        "tasks_admin.api.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tasks_admin.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Celery console API",
    "DESCRIPTION": "Reads (and, with the actions, writes) of the Celery console. "
    "Authenticate with `Authorization: Bearer <token>` (tokens: the console's Tokens page).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is read with a token like every endpoint; the docs pages need sign-in.
    "SERVE_PERMISSIONS": ["tasks_admin.api.auth.HasRole"],
    # The docs pages load Swagger UI / Redoc from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "TaskStateEnum": "tasks_admin.selectors.tasks.KNOWN_STATES",
        "DeadLetterStateEnum": "tasks_admin.api.serializers.DEADLETTER_STATES",
    },
}
# Requests per token (or signed-in user) and per address without credentials, as
# "<count>/<second|minute|hour|day>"; past it, 429 with Retry-After.
CONSOLE_API_THROTTLE = env_str("CONSOLE_API_THROTTLE", "1200/minute")
CONSOLE_API_THROTTLE_ANON = env_str("CONSOLE_API_THROTTLE_ANON", "60/minute")
# Most tasks one Flower-style /api/tasks call returns (Flower itself has no cap).
CONSOLE_FLOWER_MAX_LIMIT = env_int("CONSOLE_FLOWER_MAX_LIMIT", 1000)
# /metrics: a bearer token that may scrape (empty: none), and addresses (CIDRs) that may
# scrape without one. Signed-in API tokens of any role may scrape too.
CONSOLE_METRICS_TOKEN = env_str("CONSOLE_METRICS_TOKEN", "")
CONSOLE_METRICS_ALLOWED_ADDRESSES = env_list(
    "CONSOLE_METRICS_ALLOWED_ADDRESSES", "127.0.0.1/32,::1/128"
)
# Most task names (by volume) and workers /metrics exports; the rest are summed under
# name="other" so the number of series stays bounded. Offline workers drop out after this.
CONSOLE_METRICS_MAX_NAMES = env_int("CONSOLE_METRICS_MAX_NAMES", 200)
CONSOLE_METRICS_MAX_WORKERS = env_int("CONSOLE_METRICS_MAX_WORKERS", 500)
CONSOLE_METRICS_OFFLINE_WORKER_SECONDS = env_int("CONSOLE_METRICS_OFFLINE_WORKER_SECONDS", 600)
