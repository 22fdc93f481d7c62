"""Settings for labelstudio-ferv, read from the environment.

An empty environment is the embedded default: SQLite, Celery tasks run eagerly in-process and
media files under ./var/media, so a fresh checkout works with no services. DATABASE_URL switches
to PostgreSQL and CELERY_BROKER_URL to Redis with real workers. See README "Configuration".
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env, envbool, envint, envlist

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env("LSF_DATA_DIR", str(BASE_DIR / "var")))

PLACEHOLDER_SECRET_KEY = "insecure-placeholder-only-for-the-embedded-default"  # noqa: S105

DATABASE_URL = env("DATABASE_URL")
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
EMBEDDED = not DATABASE_URL

# A configured deployment (DATABASE_URL set) is production unless told otherwise; the embedded
# default is a developer's machine and runs with DEBUG on.
DEBUG = envbool("DJANGO_DEBUG", default=EMBEDDED)
SECRET_KEY = env("SECRET_KEY", PLACEHOLDER_SECRET_KEY)
if not DEBUG and (SECRET_KEY == PLACEHOLDER_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off."
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
if "*" in ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured("ALLOWED_HOSTS may not be a wildcard when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "clips",
    "annotations",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "labelstudio_ferv.urls"
WSGI_APPLICATION = "labelstudio_ferv.wsgi.application"
ASGI_APPLICATION = "labelstudio_ferv.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# Database -------------------------------------------------------------------------------------
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL, conn_max_age=envint("DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            # SQLite serialises writers; wait for the lock instead of failing at once.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: the failed-login counts (labelstudio_ferv/throttle.py). Redis when CACHE_URL is set,
# so that every web process shares them; else each process's memory.
CACHE_URL = env("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "lsf",
            # A cache that does not answer must not hold a login (see BROKER_SOCKET_TIMEOUT_MS).
            "OPTIONS": {"socket_timeout": 0.5, "socket_connect_timeout": 0.5},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Failed logins (API token and login form) allowed per username and per client address within
# a window; then 429 with Retry-After until the window ends.
LOGIN_FAILURES_PER_USERNAME = envint("LOGIN_FAILURES_PER_USERNAME", 10)
LOGIN_FAILURES_PER_ADDRESS = envint("LOGIN_FAILURES_PER_ADDRESS", 30)
LOGIN_FAILURE_WINDOW_SECONDS = envint("LOGIN_FAILURE_WINDOW_SECONDS", 60)
# The request header a trusted proxy puts the client's address in (as a META key, for example
# HTTP_X_FORWARDED_FOR); empty: the address of the peer.
CLIENT_ADDRESS_HEADER = env("CLIENT_ADDRESS_HEADER")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
# The day of "answered today" starts at midnight here.
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# Static and media -------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(DATA_DIR / "static")))
MEDIA_URL = env("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(DATA_DIR / "media")))
# Seconds a media URL (clip, poster, export file) works for the user it was issued to.
MEDIA_URL_TTL = envint("MEDIA_URL_TTL", 1800)
# Media goes through Django's storage API: local disk by default, an S3-compatible store when
# AWS_STORAGE_BUCKET_NAME is set (django-storages, installed with the "s3" extra).
if env("AWS_STORAGE_BUCKET_NAME"):
    # Private objects, presigned URLs that expire like the app's own media URLs.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_TTL,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# Hashed, compressed static files need `collectstatic` first (the Dockerfile runs it); without
# them (development, tests), WhiteNoise serves the app folders' static files directly.
STATIC_MANIFEST = envbool("STATIC_MANIFEST", default=not DEBUG)
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST
if not STATIC_MANIFEST:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# No media file is public: every media URL is signed for one user and expires (see
# labelstudio_ferv/media_urls.py). MEDIA_ACCEL_REDIRECT=1 when nginx (deploy/nginx.conf.template)
# serves the bytes after the app has checked the URL; on S3 the bucket presigns the URLs.
MEDIA_ACCEL_REDIRECT = envbool("MEDIA_ACCEL_REDIRECT", default=False)
MEDIA_ACCEL_PREFIX = env("MEDIA_ACCEL_PREFIX", "/_protected_media/")
MEDIA_PRESIGNED = bool(env("AWS_STORAGE_BUCKET_NAME"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# Clips -------------------------------------------------------------------------------------------
CLIP_MAX_UPLOAD_BYTES = envint("CLIP_MAX_UPLOAD_BYTES", 200 * 1024 * 1024)
CLIP_MAX_SIDE = envint("CLIP_MAX_SIDE", 448)
# Frames larger than this many pixels are refused before decoding (a clip fails, not retried).
CLIP_MAX_SOURCE_PIXELS = envint("CLIP_MAX_SOURCE_PIXELS", 4096 * 4096)
# Scratch space of transcodes, one folder per piece of work (emptied by the next attempt).
WORK_DIR = Path(env("LSF_WORK_DIR", str(DATA_DIR / "work")))
CLIP_IMPORT_ROOT = Path(env("CLIP_IMPORT_ROOT", str(DATA_DIR / "import")))

# Annotation ----------------------------------------------------------------------------------
# An annotator may change their most recent answer for this long after giving it, whatever the
# clip's consensus has become meanwhile (see annotations/ASSIGNMENT.md, "Corrections").
CORRECTION_WINDOW_SECONDS = envint("CORRECTION_WINDOW_SECONDS", 600)
# A vote's consensus message runs this long after it, taking every vote that came meanwhile:
# at 50 votes a second one message does for about 25 (0: at once).
CONSENSUS_BATCH_DELAY_MS = envint("CONSENSUS_BATCH_DELAY_MS", 500)

# Security ----------------------------------------------------------------------------------------
# Behind HTTPS (any deployment with DEBUG off), cookies are secure and HSTS is on; DJANGO_HTTPS=0
# turns this off for plain-HTTP test servers on loopback.
HTTPS = envbool("DJANGO_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and envbool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and envbool("SECURE_HSTS_PRELOAD", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# REST API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "labelstudio_ferv.authentication.FastTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "labelstudio_ferv.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "labelstudio_ferv.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# JSON bodies nested deeper than this are refused (the API's own bodies nest three levels).
API_JSON_MAX_DEPTH = envint("API_JSON_MAX_DEPTH", 32)
SPECTACULAR_SETTINGS = {
    "TITLE": "labelstudio-ferv API",
    "DESCRIPTION": "Labelling of facial-expression video clips by many annotators.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc from the project's own static files, not a CDN: /api/v1/docs/ works
    # offline and on networks that block third-party scripts.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "labelstudio_ferv.openapi.document_body_refusals",
    ],
}

# Celery ------------------------------------------------------------------------------------------
# Without a broker, tasks run eagerly in the calling process (the embedded default).
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 900)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 840)
# Tasks that opt into acks_late are redelivered when their worker dies mid-task.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up would close the database connection after every task (a new PostgreSQL
# session per task); labelstudio_ferv/celery.py applies CONN_MAX_AGE around tasks instead.
CELERY_DB_REUSE_MAX = 2**62
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message whose worker died unacknowledged is handed out again after this many seconds;
    # it must exceed the longest task (time limit) plus the longest retry countdown.
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 1800),
    # Every worker looks for such messages this often (one cheap Redis query).
    "unacked_restore_interval": envint("CELERY_RESTORE_INTERVAL", 10),
    "unacked_restore_throttle": 1,
    # A broker that stops answering with its TCP connection open (frozen, failed over, cut by a
    # firewall) would hold a publish, and the request that sends it, forever: every command on
    # the broker gives up after this long instead (labelstudio_ferv.queue then skips the broker
    # for BROKER_PUBLISH_BACKOFF seconds). A worker's BRPOP is unaffected: it is read when the
    # reply arrives (kombu's event loop), and its own 1 s timeout is shorter.
    "socket_timeout": envint("BROKER_SOCKET_TIMEOUT_MS", 1000) / 1000,
    "socket_connect_timeout": envint("BROKER_SOCKET_TIMEOUT_MS", 1000) / 1000,
}
CELERY_TIMEZONE = "UTC"
# After a failed publish, labelstudio_ferv.queue leaves work to its catch-up path for this long.
BROKER_PUBLISH_BACKOFF = envint("BROKER_PUBLISH_BACKOFF", 10)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
# The consensus messages (one per half second of votes, each a short batch) may go to a queue of
# their own, served by a single-process worker (`-P solo`, docker-compose's `consensus`): a
# prefork pool of one would keep a second copy of the application in its supervisor process.
# By default they share the default queue, so one worker serves everything.
CELERY_CONSENSUS_QUEUE = env("CELERY_CONSENSUS_QUEUE", CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_ROUTES = {
    name: {"queue": CELERY_CONSENSUS_QUEUE}
    for name in (
        "annotations.update_consensus",
        "annotations.update_consensus_stale",
        "annotations.sweep_consensus",
    )
}
# Extra votes to members the trust model rates informative first (ASSIGNMENT.md, "Extra votes
# and informative members"). Off: in two paired runs of `make bench-trust` it lowered the share
# of trusted clips (AGGREGATION.md, "Who gives the extra votes").
TRUST_INFORMATIVE_EXTRAS = envbool("TRUST_INFORMATIVE_EXTRAS", default=False)

CELERY_BEAT_SCHEDULE = {
    # Clips whose worker died are sent again once their 30 s lease ran out: within 45 s.
    "requeue-stale-clips": {
        "task": "clips.requeue_stale_clips",
        "schedule": float(envint("REQUEUE_STALE_SECONDS", 15)),
    },
    "sweep-consensus": {
        "task": "annotations.sweep_consensus",
        "schedule": float(envint("CONSENSUS_SWEEP_SECONDS", 15)),
    },
    "refresh-campaigns": {"task": "annotations.refresh_active_campaigns", "schedule": 600.0},
    # The progress history's per-hour summary (annotations/history.py): whole hours only.
    "roll-up-vote-hours": {"task": "annotations.roll_up_vote_hours", "schedule": 300.0},
    "refit-trust-models": {
        "task": "annotations.refit_trust_models",
        "schedule": float(envint("TRUST_REFIT_SECONDS", 30)),
    },
}
