"""Settings, read from the environment.

With nothing set, Humanline runs in its *embedded default*: SQLite, an
in-memory channel layer and background work run in-process (Celery eager),
so that ``make run`` needs no server.  Setting ``DATABASE_URL`` and
``REDIS_URL`` switches to PostgreSQL, channels-redis and Celery on Redis.
"""

import ipaddress
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from pythonjsonlogger.core import RESERVED_ATTRS as json_log_reserved_attrs

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- core -------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# The embedded default is for trying Humanline out on one machine; it is the
# only mode that creates demo users and tolerates a generated secret key.
EMBEDDED = not env.str("DATABASE_URL", default="") and not env.str("REDIS_URL", default="")
TESTING = env.bool("HUMANLINE_TESTING", default=False)
# pytest defines PYTEST_VERSION for the length of its run, in its process and
# in every process the suite starts (documented in pytest's reference).
UNDER_TEST_RUNNER = "PYTEST_VERSION" in os.environ

# The production guard.  Outside the embedded default a process serves real
# people, so DEBUG (tracebacks and settings shown to anyone) and the testing
# flag (a weak password hasher, the public key below) refuse to start there,
# rather than quietly lowering its defences.  The suite's own processes, under
# pytest, are the one exception.
if not EMBEDDED and not UNDER_TEST_RUNNER:
    for flag, on in (("DEBUG", DEBUG), ("HUMANLINE_TESTING", TESTING)):
        if on:
            raise environ.ImproperlyConfigured(
                f"{flag} is on with DATABASE_URL or REDIS_URL set: a production process "
                f"refuses to start with it. Unset {flag} (it is for the embedded default "
                "and the test suite only)."
            )

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not (EMBEDDED or TESTING):
        raise environ.ImproperlyConfigured("SECRET_KEY must be set outside the embedded default.")
    SECRET_KEY = "embedded-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework.authtoken",
    "channels",
    "django_htmx",
    "axes",
    "django_prometheus",
    "agents",
    "tickets",
    "marketplace",
    "outbox",
    "webhooks",
    "operations",
    "simulation",
]

MIDDLEWARE = [
    # First: every response, and every log record of the request, has its id.
    "operations.requestid.RequestIdMiddleware",
    # Request metrics (django-prometheus): this pair wraps everything between.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language from the switcher's cookie, else Accept-Language, else English
    # (after the session, before CommonMiddleware, as Django requires).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A signed-in person's own language and time zone win over the above.
    "config.locale.PreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a sign-in refused for too many failures into a 429 page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# --- sign-in lockout (django-axes) ------------------------------------------
# Every sign-in (the token endpoint, /login/, the Django admin) goes through
# ``authenticate``; axes' backend refuses it while the account or the client
# address has failed SIGN_IN_FAILURE_LIMIT times within the lockout, and a
# success clears the account's count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one locks
AXES_RESET_ON_SUCCESS = True
# Each attempt while locked out starts the lockout again (django-axes' default,
# set here because the answer relies on it): "try again in 15 minutes" is then
# exact on every surface (config.authentication.lockout_message).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = True
# The sign-in page and the Django admin answer a lockout with this site's page,
# saying when to try again (axes' own answer says only "later").
AXES_LOCKOUT_CALLABLE = "config.authentication.lockout_page"
# The same client address as the API's throttles (TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "config.authentication.client_address"
AXES_USERNAME_CALLABLE = "config.authentication.sign_in_name"
AXES_VERBOSE = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- data -------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'humanline.sqlite3'}")
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Threads per web process that run HTTP requests (config.asgi_http): how many
# requests one process serves at once; each holds a database connection while
# it runs.  A process runs Python on one core at a time (the GIL), so threads
# past the few that cover the requests' database and Redis waits only take
# turns: each request then waits behind the others at every round trip, and
# so does the event loop with the sockets' frames to send.  On the dispatch
# benchmark 4 gave a lower p99 to the offer frame than 32, at less CPU.
HTTP_THREADS = env.int("HTTP_THREADS", default=4)
if HTTP_THREADS < 1:
    raise environ.ImproperlyConfigured(f"HTTP_THREADS must be 1 or more, not {HTTP_THREADS}.")
# The hottest hand-written statements are prepared once per PostgreSQL
# connection (config.prepared); false runs them unprepared, as a connection
# pooler in transaction mode needs.
PREPARED_STATEMENTS = env.bool("PREPARED_STATEMENTS", default=True)
# How the ASGI server runs Django for HTTP: "pooled" (config.asgi_http: the WSGI
# application on HTTP_THREADS long-lived threads, each keeping its database
# connection) or "django" (Django's own ASGI handler: a new thread, and so a new
# database connection, per request).  bench/http_handler.py measures both.
HTTP_HANDLER = env.str("HTTP_HANDLER", default="pooled")
if HTTP_HANDLER not in ("pooled", "django"):
    raise environ.ImproperlyConfigured('HTTP_HANDLER must be "pooled" or "django".')
# Two interpreter-wide settings of the web processes, applied by config/asgi.py
# and off unless set (the Procfile sets both for its web processes):
# - GIL_SWITCH_INTERVAL_MS: how long a thread may keep running Python while
#   another waits for the interpreter (sys.setswitchinterval; Python's default
#   is 5 ms).  A request's thread coming back from the database or Redis, and
#   the event loop with a frame to send, wait up to this long behind a busy
#   thread, several times per request: 1 ms gave lower latency on the dispatch
#   benchmark at the same CPU.
# - GC_FREEZE_AT_START: move what the process loaded at start (Django, the
#   apps, their classes) out of the garbage collector's full passes
#   (gc.freeze).  With it tracked, a full collection stopped a web process for
#   about 80 ms, the slowest requests' share of their wait; frozen, about 11 ms.
_switch = env.str("GIL_SWITCH_INTERVAL_MS", default="")
try:
    GIL_SWITCH_INTERVAL_MS = float(_switch) if _switch else None
except ValueError:
    GIL_SWITCH_INTERVAL_MS = float("nan")
if GIL_SWITCH_INTERVAL_MS is not None and not 0 < GIL_SWITCH_INTERVAL_MS <= 1000:
    raise environ.ImproperlyConfigured(  # NaN fails the test above too
        "GIL_SWITCH_INTERVAL_MS must be a number of milliseconds above 0 and at most 1000,"
        f" not {_switch!r}."
    )
GC_FREEZE_AT_START = env.bool("GC_FREEZE_AT_START", default=False)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the ASGI server's requests and sockets, the in-process
    # sweeper) share one file, set up as Django's "SQLite notes" advise for
    # concurrent use: in WAL mode readers and the one writer do not block each
    # other (synchronous=NORMAL is crash-safe in WAL mode; a power cut may lose
    # the last commits, not the file); IMMEDIATE takes the write lock when a
    # transaction begins, so that a second writer waits for it (up to `timeout`
    # seconds) instead of failing at once with "database is locked" when its
    # read would have had to become a write.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # The test database is a file too, as for `make run`: an in-memory one is
    # neither in WAL mode nor waited for (its shared cache fails a second
    # writer at once with "database table is locked").  pytest-django creates
    # and removes it; the process id keeps two runs on one machine apart.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"humanline-test-{os.getpid()}.sqlite3")
    }
else:
    # Django's persistent connections, one per thread that touches the database.
    # A web process runs its database work on long-lived threads only: the HTTP
    # pool's (config.asgi_http, HTTP_THREADS), the event loop's default executor
    # (socket work with thread_sensitive=False) and asgiref's one thread for the
    # rest of the sockets; so it keeps at most that many connections, each
    # opened once (a backend started, a handshake, every prepared statement
    # planned anew: what a connection per request would pay each time).  The
    # health check drops a connection whose server went away (a restart) before
    # a request uses it.  The test suite keeps none: its database is dropped at
    # the end.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0 if TESTING else 300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "agents.User"

REDIS_URL = env.str("REDIS_URL", default="")
# Every Redis client (cache, channel layer, broker) gives up on an unreachable
# server after these: a request's side effects fail fast and are logged
# (config.effects), rather than hold its thread.  Redis answers in well under
# a millisecond on a LAN; a connect that takes a second is a server gone.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=2.0)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's publish/subscribe layer, as documented: a group
            # send is one PUBLISH, and each server process holds one subscriber
            # connection on which Redis pushes its sockets' messages.  Nothing
            # waits in Redis for a socket that is gone, and no socket polls;
            # a message lost in transit is repaired by the client's resync.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # One Redis, or several (CHANNELS_REDIS_URLS): each channel and
                # group then lives on one of them, chosen by a hash of its name.
                "hosts": [
                    {
                        "address": url,
                        "socket_timeout": REDIS_SOCKET_TIMEOUT,
                        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                    }
                    for url in env.list("CHANNELS_REDIS_URLS", default=[REDIS_URL])
                ],
                "prefix": env.str("CHANNELS_PREFIX", default="hl"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "hl",
            "OPTIONS": {
                "pool_class": "config.cache.SharedConnectionPool",  # one pool per process
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- background work --------------------------------------------------------
# Without Redis, tasks run in-process (eager); Celery still takes a producer from
# the broker's pool for each, and kombu warns once per process about a memory
# transport with no host name: "localhost" is the one it would fall back to.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# A task whose worker process died (kill -9, out of memory) goes back on the
# queue at once rather than being acknowledged as done; every task is safe to
# run twice (tests/test_task_redelivery.py).
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# The longest task (a payroll job) is stopped after CELERY_TASK_TIME_LIMIT,
# and Redis hands a task nobody acknowledged to another worker after the
# visibility timeout, which must be longer, or a long task would run twice
# at once.  Redis's default is an hour: a task held by a worker that vanished
# waited that long.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
_visibility_timeout = env.int("CELERY_VISIBILITY_TIMEOUT", default=20 * 60)
if _visibility_timeout <= CELERY_TASK_TIME_LIMIT:
    raise environ.ImproperlyConfigured(
        f"CELERY_VISIBILITY_TIMEOUT ({_visibility_timeout} s) must be longer than"
        f" CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT} s): Redis would hand a task"
        " still running to a second worker."
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility_timeout,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    # Well above the 1 s that a worker's BRPOP waits for a task.
    "socket_timeout": max(REDIS_SOCKET_TIMEOUT, 5.0),
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_CONNECT_TIMEOUT
# Publishing a task: one quick retry for a blip, then the failure is the
# caller's to log (config.effects); the database keeps what must still happen.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# Dispatch is latency-critical: it gets its own queue so that pushes, sweeps and
# e-mails never hold it up.  Workers consume both unless scaled apart
# (`celery -A config worker -Q dispatch` and `-Q celery`); see README.
CELERY_DISPATCH_QUEUE = env.str("CELERY_DISPATCH_QUEUE", default="dispatch")
# A webhook delivery waits on someone else's server (up to WEBHOOK_TIMEOUT_SECONDS),
# so deliveries have their own queue and workers (the Procfile's `webhooks`): a
# slow or failing receiver then holds none of the workers that dispatch, its
# sweep, e-mail and the other sweeps need.
CELERY_WEBHOOKS_QUEUE = env.str("CELERY_WEBHOOKS_QUEUE", default="webhooks")
CELERY_TASK_ROUTES = {
    "marketplace.tasks.dispatch": {"queue": CELERY_DISPATCH_QUEUE},
    "webhooks.tasks.deliver": {"queue": CELERY_WEBHOOKS_QUEUE},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
# Celery's Django fixup closes a worker's database connections before and after
# every task unless this is set; then it closes them once per this many tasks,
# and each task starts with Django's close_old_connections (operations/
# celery_signals.py), which keeps a connection until CONN_MAX_AGE or an error,
# as a web thread does.  A connection per task cost a backend start, a
# handshake and every prepared statement planned anew.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TIMEZONE = "UTC"
# Periodic sweeps; each app adds its entries in config/celery.py.
CELERY_BEAT_SCHEDULE: dict = {}

# --- auth -------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # The suite creates hundreds of users; hashing each at production strength
    # (PBKDF2, a million rounds) took minutes of the run.  Never outside tests.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- i18n -------------------------------------------------------------------
# The languages the pages, e-mails and API messages are translated into; the
# catalogs are locale/<code>/LC_MESSAGES/django.po (and djangojs.po for the
# scripts), compiled by `make install`.  People may speak many more (ISO 639-1
# codes on users, agents and tickets): those route tickets, and their pages
# fall back to the browser's language among these, else English.
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("fr", "Français"),
    ("sv", "Svenska"),
    ("de", "Deutsch"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice, remembered for a year (signed-in people: also on their profile).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or EMBEDDED or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED or TESTING
# Identity documents live here; this directory is never served by URL.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", default=str(BASE_DIR / "var" / "private")))
MEDIA_ROOT = BASE_DIR / "var" / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# First: stops an upload larger than DOCUMENT_MAX_BYTES while it streams in.
FILE_UPLOAD_HANDLERS = [
    "config.uploads.SizeLimit",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- e-mail -----------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if EMBEDDED or DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Humanline <no-reply@humanline.local>")

# --- security ---------------------------------------------------------------
SECURE = env.bool("SECURE", default=not (EMBEDDED or DEBUG or TESTING))
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Probes and Prometheus ask over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "config.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    # drf-spectacular's, with the error answers each operation can give (config.schema).
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # How many proxies in front of the app append to X-Forwarded-For: the
    # throttles key on the address that many hops back.  0 (the default): the
    # header is ignored and the peer's address is used, so that a client cannot
    # pick a new identity with each request.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
    "DEFAULT_THROTTLE_RATES": {
        "sign_in": env.str("SIGN_IN_THROTTLE", default="10/min"),
        "sign_up": env.str("SIGN_UP_THROTTLE", default="30/hour"),
        "upload": env.str("UPLOAD_THROTTLE", default="20/hour"),
        # Both send mail to an address the request names.
        "password_reset": env.str("PASSWORD_RESET_THROTTLE", default="10/hour"),
        "verification": env.str("VERIFICATION_THROTTLE", default="10/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Humanline API",
    "DESCRIPTION": "Public contract, version 1: agents, shifts, tickets, offers and pay.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # <id:…> in URLs (config.params.IdConverter): an id, 1 to 10**18 - 1.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AgentStatusEnum": "agents.models.AgentStatus",
        "PresenceEnum": "agents.models.Presence",
        "SlotStatusEnum": "marketplace.models.SlotStatus",
        "BookingStatusEnum": "marketplace.models.BookingStatus",
        "RoleEnum": "agents.models.Role",
        "TranscriptRoleEnum": [("user", "user"), ("bot", "bot")],
        "FeedbackKindEnum": "tickets.models.FeedbackKind",
        "IncentiveKindEnum": "marketplace.models.IncentiveKind",
        "ShiftEventKindEnum": "marketplace.models.ShiftEventKind",
        "DeclineReasonEnum": "marketplace.models.DeclineReason",
    },
}

# --- Humanline policy (each overridable from the environment) ---------------
HUMANLINE = {
    "DEMO_DATA": EMBEDDED,
    # The living demo (simulation/live.py): simulated customers and agents keep the
    # floor moving while the embedded default serves.  Never elsewhere, nor in tests.
    "DEMO_LIVE": EMBEDDED
    and not TESTING
    and not UNDER_TEST_RUNNER
    and env.bool("DEMO_LIVE", default=True),
    "AGENT_CAPACITY_DEFAULT": env.int("AGENT_CAPACITY_DEFAULT", default=2),
    "AGENT_CAPACITY_MAX": env.int("AGENT_CAPACITY_MAX", default=5),
    "DOCUMENT_MAX_BYTES": env.int("DOCUMENT_MAX_BYTES", default=10 * 1024 * 1024),
    "DOCUMENT_MAX_COUNT": env.int("DOCUMENT_MAX_COUNT", default=5),
    # Webhooks: https only where cookies are secure (production); private,
    # loopback and link-local destinations only where allowed (tests, the demo).
    "WEBHOOK_REQUIRE_HTTPS": env.bool("WEBHOOK_REQUIRE_HTTPS", default=SECURE),
    "WEBHOOK_ALLOW_PRIVATE": env.bool("WEBHOOK_ALLOW_PRIVATE", default=EMBEDDED or TESTING),
    "WEBHOOK_TIMEOUT_SECONDS": env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0),
    # The waits before each retry: about a day in all, then the delivery fails.
    "WEBHOOK_RETRY_SECONDS": env.str(
        "WEBHOOK_RETRY_SECONDS", default="30,120,600,1800,3600,7200,14400,28800,28800"
    ),
    # Failed attempts in a row after which an endpoint is switched off.
    "WEBHOOK_DISABLE_AFTER": env.int("WEBHOOK_DISABLE_AFTER", default=15),
    # How old a process's view of a lane's order may grow before it reads it
    # again; places lag other processes' changes by this much at most.
    "QUEUE_ORDER_SECONDS": env.float("QUEUE_ORDER_SECONDS", default=2.0),
    # ...or longer for a long line: its rows are read this fast at most.
    "QUEUE_ORDER_ROWS_PER_SECOND": env.int("QUEUE_ORDER_ROWS_PER_SECOND", default=5000),
    # Mail whose send task was lost is sent by the sweeper after this long.
    "OUTBOX_GRACE_SECONDS": env.int("OUTBOX_GRACE_SECONDS", default=60),
    # How long the link that verifies a customer's e-mail address stays good.
    "EMAIL_VERIFICATION_HOURS": env.int("EMAIL_VERIFICATION_HOURS", default=72),
    "OPEN_TICKETS_PER_CUSTOMER": env.int("OPEN_TICKETS_PER_CUSTOMER", default=3),
    "REALTIME_TICKET_TTL_SECONDS": env.int("REALTIME_TICKET_TTL_SECONDS", default=60),
    "CURRENCY": env.str("CURRENCY", default="EUR"),
    # Shifts.  The 30-minute grid itself is fixed by the product.
    "SHIFT_CANCEL_CUTOFF_HOURS": env.int("SHIFT_CANCEL_CUTOFF_HOURS", default=2),
    "SHIFT_WEEKLY_HOURS_CAP": env.int("SHIFT_WEEKLY_HOURS_CAP", default=40),
    "SHIFT_ATTENDANCE_PERCENT": env.int("SHIFT_ATTENDANCE_PERCENT", default=75),
    "SHIFT_SLOT_MAX_HOURS": env.int("SHIFT_SLOT_MAX_HOURS", default=12),
    "SHIFT_HEADCOUNT_MAX": env.int("SHIFT_HEADCOUNT_MAX", default=500),
    "SHIFT_PUBLISH_HORIZON_DAYS": env.int("SHIFT_PUBLISH_HORIZON_DAYS", default=120),
    "SHIFT_INCENTIVE_MAX": env.str("SHIFT_INCENTIVE_MAX", default="500.00"),
    # Staffing (Erlang C; see docs/architecture.md, "Staffing").  The goal the
    # planner staffs to: this share of tickets answered within this many seconds.
    "STAFFING_SERVICE_LEVEL": env.float("STAFFING_SERVICE_LEVEL", default=0.8),
    "STAFFING_ANSWER_SECONDS": env.int("STAFFING_ANSWER_SECONDS", default=60),
    # Past weeks the forecast averages (the most recent weighs most).
    "STAFFING_FORECAST_WEEKS": env.int("STAFFING_FORECAST_WEEKS", default=4),
    # Handle time until enough resolved tickets measure it.
    "STAFFING_HANDLE_SECONDS_DEFAULT": env.int("STAFFING_HANDLE_SECONDS_DEFAULT", default=600),
    "STAFFING_HANDLE_MIN_SAMPLES": env.int("STAFFING_HANDLE_MIN_SAMPLES", default=20),
    # Agents every half hour needs whatever the forecast: "always reach a person".
    "STAFFING_MIN_AGENTS": env.int("STAFFING_MIN_AGENTS", default=1),
    # Presence.
    "ONLINE_HOURS_PER_24H_CAP": env.int("ONLINE_HOURS_PER_24H_CAP", default=12),
    "PRESENCE_GRACE_SECONDS": env.int("PRESENCE_GRACE_SECONDS", default=60),
    "AGENT_SOCKET_STALE_SECONDS": env.int("AGENT_SOCKET_STALE_SECONDS", default=90),
    # Tickets (see docs/architecture.md, "Tickets", for the formulas).
    "TICKET_REOPEN_WINDOW_HOURS": env.int("TICKET_REOPEN_WINDOW_HOURS", default=72),
    "IDEMPOTENCY_KEY_TTL_HOURS": env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24),
    "QUEUE_ETA_WINDOW_MINUTES": env.int("QUEUE_ETA_WINDOW_MINUTES", default=30),
    "QUEUE_ETA_MIN_SAMPLES": env.int("QUEUE_ETA_MIN_SAMPLES", default=3),
    "QUEUE_ETA_SAMPLES": env.int("QUEUE_ETA_SAMPLES", default=200),
    "QUEUE_ETA_FALLBACK_SECONDS": env.int("QUEUE_ETA_FALLBACK_SECONDS", default=180),
    "QUEUE_ETA_CACHE_SECONDS": env.float("QUEUE_ETA_CACHE_SECONDS", default=5.0),
    "QUEUE_PUSH_INTERVAL_SECONDS": env.float("QUEUE_PUSH_INTERVAL_SECONDS", default=1.0),
    "QUEUE_PUSH_HEAD": env.int("QUEUE_PUSH_HEAD", default=50),
    "QUEUE_PUSH_FULL_SECONDS": env.int("QUEUE_PUSH_FULL_SECONDS", default=10),
    # Places told per second, at most, when a whole lane is pushed.
    "QUEUE_PUSH_FULL_RATE": env.int("QUEUE_PUSH_FULL_RATE", default=2000),
    # A ticket's socket marks it watched on connect and each ping (every 25 s
    # from the help centre); places in line are pushed only to watched tickets.
    "QUEUE_PUSH_WATCH_SECONDS": env.int("QUEUE_PUSH_WATCH_SECONDS", default=70),
    "QUALITY_RECENT_RATINGS": env.int("QUALITY_RECENT_RATINGS", default=50),
    "QUALITY_WINDOW_DAYS": env.int("QUALITY_WINDOW_DAYS", default=90),
    # After a resolve, an agent's score is stored again once per this many seconds.
    "QUALITY_REFRESH_SECONDS": env.int("QUALITY_REFRESH_SECONDS", default=30),
    # Dispatch and pricing (see docs/architecture.md, "Dispatch").
    "OFFER_WINDOW_SECONDS": env.int("OFFER_WINDOW_SECONDS", default=15),
    "OFFER_EXPIRIES_BEFORE_AWAY": env.int("OFFER_EXPIRIES_BEFORE_AWAY", default=3),
    # An agent who passed on a ticket (declined it, let the offer expire) may be
    # offered it again after this long: a small pool never strands a ticket.
    "REOFFER_COOLDOWN_SECONDS": env.int("REOFFER_COOLDOWN_SECONDS", default=60),
    # How long a ticket may wait for a person, by priority, before it climbs the
    # escalation ladder; and when it reaches each rung, in multiples of that
    # target (marketplace.services.escalation checks both at start-up).
    "WAIT_TARGET_SECONDS": env.str("WAIT_TARGET_SECONDS", default="urgent:30,high:60,normal:120"),
    "ESCALATION_LADDER": env.str(
        "ESCALATION_LADDER",
        default="waiting_bonus:1,staff_alert:1,customer_notice:1,wider_pool:2",
    ),
    # The waiting bonus: each new offer of a ticket past its target pays this much
    # more than the one before, up to the cap (in CURRENCY).
    "WAITING_BONUS_STEP": env.str("WAITING_BONUS_STEP", default="0.50"),
    "WAITING_BONUS_CAP": env.str("WAITING_BONUS_CAP", default="2.00"),
    "ASSIGNED_TICKET_GRACE_SECONDS": env.int("ASSIGNED_TICKET_GRACE_SECONDS", default=300),
    "AGENT_FIRST_REPLY_SECONDS": env.int("AGENT_FIRST_REPLY_SECONDS", default=300),
    # Between two passes of one single-flight run, at least this long: requests
    # arriving meanwhile (an accept each, under load) ride on the next pass.
    "DISPATCH_PASS_INTERVAL_MS": env.int("DISPATCH_PASS_INTERVAL_MS", default=50),
    # Offer a newly queued ticket in the process that queued it, right after the
    # commit, and let an agent freed by an answer or a resolve pull the first
    # ticket in line, in the process that freed them; off, every decision goes
    # through a pass on the dispatch queue.
    "DISPATCH_INLINE": env.bool("DISPATCH_INLINE", default=True),
    # A ticket queued less than this long ago is its own fast path's to offer; after
    # it, an agent freed by an accept takes it (the pull) if it heads their queue.
    "DISPATCH_PULL_AFTER_MS": env.int("DISPATCH_PULL_AFTER_MS", default=200),
    "DISPATCH_SWEEP_SECONDS": env.float("DISPATCH_SWEEP_SECONDS", default=1.0),
    "TASK_RATE_DEFAULT": env.str("TASK_RATE_DEFAULT", default="2.00"),
    "SURGE_BANDS": env.str("SURGE_BANDS", default="1.0:1.2,1.5:1.5,2.0:1.8,3.0:2.0"),
    "SURGE_CAP": env.str("SURGE_CAP", default="2.00"),
    # Pay and payroll (see docs/architecture.md, "Pay").  Weekday 0 is Monday.
    "PAY_PERIOD_START_WEEKDAY": env.int("PAY_PERIOD_START_WEEKDAY", default=0),
    "PAY_PERIOD_TIME_ZONE": env.str("PAY_PERIOD_TIME_ZONE", default="UTC"),
    # Rating score -> bonus, in CURRENCY: "5:0.50" or "4:0.20,5:0.50".
    "QUALITY_BONUS": env.str("QUALITY_BONUS", default="5:0.50"),
    # The engaged-time floor per hour with at least one assigned ticket.
    "PAY_FLOOR_HOURLY_RATE": env.str("PAY_FLOOR_HOURLY_RATE", default="10.00"),
    "PAY_FLOOR_CURRENCY": env.str("PAY_FLOOR_CURRENCY", default=env.str("CURRENCY", default="EUR")),
    "PAY_ADJUSTMENT_MAX": env.str("PAY_ADJUSTMENT_MAX", default="1000.00"),
    # Closed weeks with more entries than this are prepared in the background
    # (with progress on the floor) before download; smaller ones stream at once.
    "PAYROLL_EXPORT_INLINE_MAX_ENTRIES": env.int(
        "PAYROLL_EXPORT_INLINE_MAX_ENTRIES", default=20_000
    ),
}

# --- operations: health, metrics, logs (operations/, README "Operations") ---
OPERATIONS = {
    # Each /readyz check gives up after this long (database, Redis).
    "READINESS_TIMEOUT_SECONDS": env.float("READINESS_TIMEOUT_SECONDS", default=1.0),
    # Beat sends a heartbeat task to each queue this often; /readyz wants beat's
    # and each queue's worker's last heartbeat at most HEARTBEAT_MAX_AGE_SECONDS old.
    "HEARTBEAT_SECONDS": env.float("HEARTBEAT_SECONDS", default=10.0),
    "HEARTBEAT_MAX_AGE_SECONDS": env.float("HEARTBEAT_MAX_AGE_SECONDS", default=30.0),
}
# /metrics answers a request with `Authorization: Bearer METRICS_TOKEN`, or one
# from an address in METRICS_ALLOWED_NETWORKS (CIDR; the client address as the
# throttles see it, TRUSTED_PROXY_COUNT); anyone else gets a 403.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network.strip(), strict=False)
    except ValueError:
        raise environ.ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network (CIDR, e.g. 10.0.0.0/8)."
        ) from None

# Human-readable lines by default; one JSON object per line with LOG_FORMAT=json
# (python-json-logger).  Every record carries the request id (operations.requestid),
# in the web processes and in the tasks a request enqueued.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise environ.ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "operations.requestid.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",  # ISO 8601, UTC
            # uvicorn adds its message again with terminal colours: not for a log store.
            "reserved_attrs": [*json_log_reserved_attrs, "color_message"],
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
if LOG_FORMAT == "json":
    # uvicorn's own lines (errors, start and stop) through the same handler.
    for _name in ("uvicorn", "uvicorn.error"):
        LOGGING["loggers"][_name] = {"handlers": ["console"], "propagate": False}
