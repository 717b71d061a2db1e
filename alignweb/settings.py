"""Settings come from the environment and fail loudly.

Every value has an embedded default that runs on a laptop (the embedded PostgreSQL that ``make demo``
starts under ``var/``, a filesystem Celery broker, an in-process cache), and an environment variable
for production. A bad value
stops the process at start with a message naming the variable.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from alignweb import embedded_db
from alignweb.booleans import text_bool

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded_db.var_dir()

env = environ.Env()


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default=str(default))
    value = False if not raw.strip() else text_bool(raw)
    if value is None:
        raise ImproperlyConfigured(f"{name}={raw.strip().lower()!r} is not a boolean; use true or false.")
    return value


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default=str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}.")
    return value


_RATE = re.compile(r"\d+/(s|sec|second|m|min|minute|h|hour|d|day)")


def _rate(name: str, default: str) -> str | None:
    """A request rate as DRF's throttles read it ("60/minute"), or None for "off"."""
    raw = env.str(name, default=default).strip().lower()
    if raw == "off":
        return None
    if not _RATE.fullmatch(raw):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate; write it as 60/minute (or second, hour, day), or off."
        )
    return raw


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key
    # `make demo` (scripts/demo.sh) writes a random key here once; it is never committed.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it in the environment (production), or run `make demo`, "
        f"which generates one into {key_file}."
    )


DEBUG = _bool("DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files, not a CDN
    "csp",
    "annotation",
    "training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # django-csp's, with the header built once (alignweb/content_security.py); above WhiteNoise, so
    # static files carry the policy too.
    "alignweb.content_security.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login (form, admin, token) into a 429.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy on every response: scripts, styles and everything else come from our own
# origin, as files. No inline script or style, no eval, no plugins, no framing by another site, and
# forms post only to us. Templates keep to it (tests/test_csp.py scans them): behaviour lives in
# static/js, looks in static/css classes, and data for a script in a `json_script` block.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# Messages live in the session. The default (cookie, then session) builds a cookie signer on every
# request, API calls included: ~3% of the app's CPU under the load bench, for pages that rarely
# flash a message.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "alignweb.urls"
WSGI_APPLICATION = "alignweb.wsgi.application"
ASGI_APPLICATION = "alignweb.asgi.application"

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
            ],
        },
    },
]

# PostgreSQL only. Unset, the embedded server of `make demo` (`python -m alignweb.embedded_db start`).
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=embedded_db.url(VAR_DIR))}
except (ImproperlyConfigured, KeyError, ValueError) as error:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {error}") from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...).")
DATABASES["default"]["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Logins (the login form, the admin's, POST /api/auth/token/) go through django-axes first: after
# ALIGNWEB_LOGIN_FAILURE_LIMIT failures for one username, or from one address, every attempt
# with that username or from that address is answered 429 (alignweb/lockout.py) for 15 minutes
# after the last failure.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = _int("ALIGNWEB_LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "alignweb.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "alignweb.lockout.client_address"
AXES_HTTP_RESPONSE_CODE = 429
# The number of proxies in front of the app that append the caller's address to X-Forwarded-For.
# 0 (the default) trusts no such header: the address is the connection's. Throttles and lockouts
# both count by this address.
ALIGNWEB_PROXY_COUNT = _int("ALIGNWEB_PROXY_COUNT", 0)
# API tokens are stored as digests and expire this many days after they are issued or rotated.
ALIGNWEB_TOKEN_TTL_DAYS = _int("ALIGNWEB_TOKEN_TTL_DAYS", 30, minimum=1)
# API request rates (annotation/api/throttles.py): per address for anonymous callers, per user
# otherwise, the vote's two calls included; "off" turns one off.
ALIGNWEB_THROTTLE_ANON = _rate("ALIGNWEB_THROTTLE_ANON", "60/minute")
ALIGNWEB_THROTTLE_USER = _rate("ALIGNWEB_THROTTLE_USER", "1200/minute")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed names need `collectstatic`; tests and DEBUG serve the source files as they are.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if _bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: imports are streamed to disk and validated whole before anything is written.
ALIGNWEB_IMPORT_MAX_BYTES = _int("ALIGNWEB_IMPORT_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Where trained checkpoints and converted base models live (shared by web and workers).
ALIGNWEB_CHECKPOINT_DIR = Path(env.str("ALIGNWEB_CHECKPOINT_DIR", default=str(VAR_DIR / "checkpoints")))
ALIGNWEB_MODEL_CACHE = Path(env.str("ALIGNWEB_MODEL_CACHE", default=str(VAR_DIR / "models")))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "annotation.api.authentication.TokenAuthentication",  # hashed API tokens, looked up in one join
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api.errors.exception_handler",  # service errors -> 400/409
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": [
        "annotation.api.throttles.AnonThrottle",
        "annotation.api.throttles.UserThrottle",
    ],
    "NUM_PROXIES": ALIGNWEB_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "alignweb API",
    "DESCRIPTION": "Collect human preferences, train reward models and policies, export datasets.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every endpoint and its fields: only signed-in users may read it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The docs page loads its scripts from our own static files: no third-party CDN sees our users.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would otherwise send the schema's address to validator.swagger.io for a badge.
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None},
    # One name per choice set: the stored (canonical a/b) choice and the one in display terms.
    "ENUM_NAME_OVERRIDES": {
        "CanonicalChoiceEnum": "annotation.models.Choice",
        "ShownChoiceEnum": "annotation.services.judgements.SHOWN_CHOICES",
        # Exports and generation jobs share one lifecycle's states.
        "JobStateEnum": "alignweb.jobs.JobState",
        "RunKindEnum": "training.models.RunKind",
        "RunStateEnum": "training.models.RunState",
        "ModelKindEnum": "training.models.ModelKind",
        "VersionStatusEnum": "training.models.VersionStatus",
        "PromotionStatusEnum": "training.serializers.PROMOTIONS",
    },
}

# Celery. The default broker needs no server: kombu's filesystem transport under var/.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange-to-queue bindings; kombu's default is ./control in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "sqla+")):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r} is not supported; use redis://, amqp:// or filesystem://."
    )
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # progress and results live in the database, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"training.tasks.*": {"queue": "training"}}
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", False)

# Training runs, generation jobs, evaluations and exports: one whose worker has not beaten for this
# long is re-queued by a reaper (beat schedule below; run `celery -A alignweb beat` or a worker with
# -B); a run resumes from its last checkpoint, a job after its last batch, an evaluation and an
# export start afresh.
# Time limits apply to training, generation and scoring tasks, and to exports.
ALIGNWEB_RUN_STALE_SECONDS = _int("ALIGNWEB_RUN_STALE_SECONDS", 120, minimum=2)
ALIGNWEB_REAPER_INTERVAL_SECONDS = _int("ALIGNWEB_REAPER_INTERVAL_SECONDS", 60, minimum=1)
ALIGNWEB_TRAINING_SOFT_TIME_LIMIT = _int("ALIGNWEB_TRAINING_SOFT_TIME_LIMIT", 6 * 3600, minimum=10)
ALIGNWEB_TRAINING_TIME_LIMIT = _int(
    "ALIGNWEB_TRAINING_TIME_LIMIT",
    ALIGNWEB_TRAINING_SOFT_TIME_LIMIT + 600,
    minimum=ALIGNWEB_TRAINING_SOFT_TIME_LIMIT + 1,
)
ALIGNWEB_EXPORT_SOFT_TIME_LIMIT = _int("ALIGNWEB_EXPORT_SOFT_TIME_LIMIT", 3600, minimum=10)
ALIGNWEB_EXPORT_TIME_LIMIT = _int(
    "ALIGNWEB_EXPORT_TIME_LIMIT",
    ALIGNWEB_EXPORT_SOFT_TIME_LIMIT + 60,
    minimum=ALIGNWEB_EXPORT_SOFT_TIME_LIMIT + 1,
)
CELERY_BEAT_SCHEDULE = {
    "reap-stale-training-runs": {
        "task": "training.tasks.reap_stale_runs",
        "schedule": float(ALIGNWEB_REAPER_INTERVAL_SECONDS),
        "options": {"queue": "default"},
    },
    "reap-stale-generation-jobs": {
        "task": "training.tasks.reap_stale_generation_jobs",
        "schedule": float(ALIGNWEB_REAPER_INTERVAL_SECONDS),
        "options": {"queue": "default"},
    },
    "reap-stale-evaluations": {
        "task": "training.tasks.reap_stale_evaluations",
        "schedule": float(ALIGNWEB_REAPER_INTERVAL_SECONDS),
        "options": {"queue": "default"},
    },
    "reap-stale-exports": {
        "task": "annotation.exports_reap_stale",
        "schedule": float(ALIGNWEB_REAPER_INTERVAL_SECONDS),
        "options": {"queue": "default"},
    },
    "expire-annotation-leases": {
        "task": "annotation.leases_expire",
        "schedule": 60.0,
        "options": {"queue": "default"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Host names a model version's endpoint may name although they resolve to a private, loopback or
# otherwise internal address (a GPU box on the LAN, a local Ollama): the operator's choice, by name.
ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = [
    host.strip().lower() for host in env.list("ALIGNWEB_ENDPOINT_ALLOWED_HOSTS", default=[]) if host.strip()
]

# A model version's endpoint key is named, not stored: an environment variable of the workers whose
# name starts with this prefix (training/endpoint_keys.py). Nothing else of the environment can be
# named, so choose a prefix that only endpoint keys use.
ALIGNWEB_ENDPOINT_KEY_PREFIX = env.str("ALIGNWEB_ENDPOINT_KEY_PREFIX", default="ALIGNWEB_ENDPOINT_KEY_")
if not re.fullmatch(r"[A-Z][A-Z0-9]*_([A-Z0-9]+_)*", ALIGNWEB_ENDPOINT_KEY_PREFIX):
    raise ImproperlyConfigured(
        f"ALIGNWEB_ENDPOINT_KEY_PREFIX={ALIGNWEB_ENDPOINT_KEY_PREFIX!r} must be upper-case letters, "
        "digits and _, start with a letter and end with _ (e.g. ALIGNWEB_ENDPOINT_KEY_)."
    )

if not DEBUG:
    SESSION_COOKIE_SECURE = _bool("SECURE_COOKIES", False)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    # HTTPS behind a proxy: each is off by default (a laptop serves plain HTTP) and set per deployment.
    SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", True)
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", False)
    # The header the proxy sets for an HTTPS request, e.g. X-Forwarded-Proto (it must strip a client's own).
    if _proxy_header := env.str("SECURE_PROXY_SSL_HEADER", default=""):
        SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.strip().upper().replace("-", "_"), "https")
