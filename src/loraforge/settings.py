"""The one settings object: every knob is a `LORAFORGE_*` environment variable.

Fail fast: a bad value stops the process at start-up with a readable message instead of surfacing
later as a confusing runtime error. The rules a production start enforces are in `settings_safety`;
the README table that `loraforge settings-doc` prints is rendered by `settings_doc`; paths under the
data directory and generated secret files are `settings_files`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loraforge.settings_files import UnderDataDir, load_or_create_secret_file
from loraforge.settings_ops import OperationsSettings
from loraforge.settings_safety import production_problems


class InsecureSettingsError(RuntimeError):
    """Production mode found a weak or default secret; the message lists each problem."""


class Settings(BaseSettings, OperationsSettings):
    """LoRAForge configuration. Each field maps to the environment variable `LORAFORGE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="LORAFORGE_", extra="ignore", validate_default=True)

    data_dir: Path = Field(
        default=Path("./data"),
        description="Directory for the database, secrets, datasets, runs and models.",
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy database URL. Default: a SQLite file `<data_dir>/loraforge.db`. "
            "PostgreSQL: `postgresql+psycopg://user:pass@host:5432/dbname`."
        ),
    )
    auto_migrate: bool = Field(
        default=True,
        description=(
            "Apply database migrations when the server starts. Turn off when several replicas share "
            "one database and `loraforge migrate` runs once per deploy; the server then refuses to "
            "start on an outdated schema."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `loraforge serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `loraforge serve` listens on.")
    jwt_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs access tokens (HS256). If unset, a random one is generated once and kept "
            "in `<data_dir>/secrets/jwt_secret` (mode 0600)."
        ),
    )
    access_token_ttl_seconds: int = Field(
        default=15 * 60, ge=30, description="Lifetime of an access token, in seconds."
    )
    refresh_token_ttl_seconds: int = Field(
        default=24 * 3600, ge=60, description="Lifetime of a refresh token (session), in seconds."
    )
    remember_me_ttl_seconds: int = Field(
        default=30 * 24 * 3600,
        ge=60,
        description="Lifetime of a refresh token when the user ticks 'remember me', in seconds.",
    )
    admin_username: str = Field(default="admin", description="Username of the admin created on first start.")
    admin_email: str = Field(
        default="admin@example.com", description="Email of the admin created on first start."
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description=(
            "If set and no user with `admin_username` exists, that admin is created with this password "
            "at start-up. If unset and the database has no user at all, a one-time random password is "
            "printed to the console instead."
        ),
    )
    registration_open: bool = Field(
        default=True, description="Whether anyone may create an account with POST /api/auth/register."
    )
    registration_max_per_hour: int = Field(
        default=20,
        ge=1,
        description=(
            "Registration attempts (successful or not) one client address may make per hour; more get 429."
        ),
    )
    password_hash_time_cost: int = Field(
        default=2, ge=1, le=20, description="argon2id passes over memory when hashing a password."
    )
    password_hash_memory_kib: int = Field(
        default=19 * 1024, ge=64, le=4 * 1024 * 1024, description="argon2id memory per password hash, in KiB."
    )
    password_hash_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes (threads).")
    production: bool = Field(
        default=False,
        description=(
            "Production mode: refuse to start with a weak or default JWT secret or admin password, "
            "and hide internal details from error responses."
        ),
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Largest request body the JSON API accepts, in bytes (larger → 413).",
    )
    login_max_failures: int = Field(
        default=10,
        ge=1,
        description=(
            "Failed logins per account from one client address allowed within the window; an address may "
            "fail three times as often over all accounts."
        ),
    )
    login_window_seconds: int = Field(
        default=15 * 60, ge=1, description="Window for counting failed logins, in seconds."
    )
    cookie_secure: bool = Field(
        default=False,
        description="Mark the refresh cookie `Secure` (only sent over HTTPS). Turn on behind TLS.",
    )
    web_dist_dir: Path | None = Field(
        default=None,
        description="Directory of the built web UI. Default: the `web/dist` folder inside the package.",
    )
    log_level: str = Field(default="info", description="Server log level (debug, info, warning, error).")
    dataset_max_upload_bytes: int = Field(
        default=10 * 1000**3,
        ge=1,
        description="Largest dataset file accepted, by upload or import, in bytes (larger → 413).",
    )
    dataset_form_max_bytes: int = Field(
        default=1024**3,
        ge=1024,
        description=(
            "Largest multipart request for one-shot dataset uploads and dataset_info.json imports, in "
            "bytes (use the resumable upload above this)."
        ),
    )
    dataset_chunk_max_bytes: int = Field(
        default=64 * 1024**2,
        ge=1024,
        description="Largest chunk of a resumable dataset upload (one PUT request), in bytes.",
    )
    dataset_chunk_size: int = Field(
        default=8 * 1024**2, ge=1024, description="Chunk size suggested to clients of resumable uploads."
    )
    dataset_upload_ttl_seconds: int = Field(
        default=24 * 3600, ge=60, description="An unfinished resumable upload is discarded after this long."
    )
    dataset_max_row_bytes: int = Field(
        default=8 * 1024**2,
        ge=1024,
        description="Largest single row (a JSONL line, a JSON array element) in bytes (larger: invalid).",
    )
    dataset_import_roots: str = Field(
        default="",
        description=(
            "Server folders from which datasets may be imported by path, separated by `:` or `,`. "
            "Empty: importing server-side paths is disabled."
        ),
    )

    scheduler_enabled: bool = Field(
        default=True,
        description="Run the job scheduler (queue admission, launching, event tailing) in this process.",
    )
    scheduler_interval_seconds: float = Field(
        default=0.5,
        gt=0.0,
        le=60.0,
        description="How often the scheduler loop looks at the queue, in seconds.",
    )
    max_running_jobs_per_user: int = Field(
        default=1, ge=1, description="Jobs one user may have starting or running at once (more wait queued)."
    )
    max_running_jobs: int = Field(
        default=8, ge=1, description="Jobs the whole platform runs at once (more wait queued)."
    )
    job_stop_timeout_seconds: float = Field(
        default=180.0,
        gt=0.0,
        description="After a graceful stop (SIGTERM), kill the engine's process group if it is still alive.",
    )

    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where engine processes run: `local` subprocesses or a Ray cluster (`ray_address`).",
    )
    ray_address: str = Field(
        default="",
        description="Ray Jobs API address (the dashboard, e.g. `http://127.0.0.1:8265`) for `executor=ray`.",
    )
    gpu_count: int | None = Field(
        default=None,
        ge=0,
        description="GPUs the local executor may hand out (default: as many as NVML reports; 0 without one).",
    )
    event_poll_seconds: float = Field(
        default=0.05,
        gt=0.0,
        le=5.0,
        description="How often running jobs' event files are read for live streaming, in seconds.",
    )
    ws_heartbeat_seconds: float = Field(
        default=15.0, gt=0.0, description="Idle WebSocket connections get a heartbeat message this often."
    )
    retention_days: float = Field(
        default=7.0,
        ge=0.0,
        description=(
            "Checkpoints and outputs of finished jobs are removed after this many days unless the job is "
            "pinned or a registered model needs them (0: keep forever)."
        ),
    )
    retention_interval_seconds: float = Field(
        default=3600.0, gt=0.0, description="How often the retention sweep runs, in seconds."
    )
    webhook_max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts to deliver one notification to a user's webhook."
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0.0, le=60.0, description="Timeout of one webhook POST, in seconds."
    )
    webhook_backoff_seconds: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="Wait before the first webhook retry; each further retry waits twice as long (max 1 h).",
    )

    inference_backend: Literal["auto", "builtin", "vllm"] = Field(
        default="auto",
        description=(
            "What serves registered models: the `builtin` transformers worker, `vllm` (`vllm serve`), or "
            "`auto` (vLLM when it is installed and a GPU is present, else builtin)."
        ),
    )
    inference_memory_budget_mb: int = Field(
        default=8192,
        ge=64,
        description="Memory the builtin worker may fill with base models (least recently used go first).",
    )
    inference_idle_timeout_seconds: float = Field(
        default=900.0,
        gt=0.0,
        description="A deployment without requests for this long is stopped (its worker exits when idle).",
    )
    inference_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Generations the builtin worker runs at once; more requests wait in a first-come queue.",
    )
    inference_start_timeout_seconds: float = Field(
        default=120.0, gt=0.0, description="How long a starting worker may take to answer its health check."
    )
    inference_request_timeout_seconds: float = Field(
        default=600.0, gt=0.0, description="Gateway timeout for one upstream chat request, in seconds."
    )
    provider_secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that encrypts provider API keys at rest (Fernet). If unset, a random one is generated once "
            "and kept in `<data_dir>/secrets/provider_key` (mode 0600)."
        ),
    )
    files_max_upload_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1, description="Largest file accepted by `POST /v1/files`."
    )
    # -- exposure: what the server trusts and how much one client may take ------------------------
    outbound_allow: str = Field(
        default="",
        description=(
            "Comma-separated hosts, `host:port` pairs or CIDR networks that provider, webhook and hub URLs "
            "may reach although they are loopback, private, link-local or otherwise internal (refused by "
            "default)."
        ),
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "Comma-separated addresses or CIDR networks of reverse proxies whose `X-Forwarded-For` and "
            "`X-Forwarded-Proto` are believed. Empty: the socket's peer address is the client."
        ),
    )
    ws_max_per_user: int = Field(
        default=32, ge=1, le=10_000, description="Open WebSocket connections one user may hold at once."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for `GET /metrics` (Prometheus). Without it, only admins may read it.",
    )
    request_body_timeout_seconds: float = Field(
        default=60.0,
        gt=0.0,
        description=(
            "Time a request body may take, plus one second per 64 KiB received; a body that falls behind "
            "(sent a byte at a time, or stalled) is answered 408."
        ),
    )
    request_header_timeout_seconds: float = Field(
        default=15.0,
        gt=0.0,
        description=(
            "A connection that has not sent a complete request head (request line and headers) this long "
            "after it opened, or after its previous response, is closed (`loraforge serve`)."
        ),
    )

    _generated_signing_key: str | None = PrivateAttr(default=None)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return value

    # -- derived values ------------------------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL actually used (the SQLite default resolved against data_dir)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'loraforge.db').resolve()}"

    @property
    def import_roots(self) -> list[Path]:
        """The admin-configured folders datasets may be imported from, resolved (symlinks followed)."""
        parts = [p.strip() for chunk in self.dataset_import_roots.split(",") for p in chunk.split(":")]
        return [Path(p).expanduser().resolve() for p in parts if p]

    # What LoRAForge keeps below data_dir; each is computed on access, so it follows data_dir.
    runs_dir: ClassVar[UnderDataDir] = UnderDataDir("runs")
    models_dir: ClassVar[UnderDataDir] = UnderDataDir("models")
    files_dir: ClassVar[UnderDataDir] = UnderDataDir(
        "files", doc="Files uploaded through /v1/files: `<files_dir>/<file id>`."
    )
    inference_dir: ClassVar[UnderDataDir] = UnderDataDir(
        "inference", doc="Inference worker logs and state: `<inference_dir>/worker-<port>.log`."
    )
    secrets_dir: ClassVar[UnderDataDir] = UnderDataDir("secrets")
    jwt_secret_file: ClassVar[UnderDataDir] = UnderDataDir("secrets", "jwt_secret")

    @property
    def resolved_web_dist_dir(self) -> Path:
        if self.web_dist_dir is not None:
            return self.web_dist_dir
        return Path(__file__).resolve().parent / "web" / "dist"

    def signing_key(self) -> str:
        """The JWT signing key: the configured one, else the generated one kept in the data dir."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        # Cached so the file is read once, not on every request.
        if self._generated_signing_key is None:
            self._generated_signing_key = load_or_create_secret_file(self.jwt_secret_file)
        return self._generated_signing_key

    def check_production_safety(self) -> None:
        """Raise InsecureSettingsError listing every weak secret when production mode is on."""
        if not self.production:
            return
        problems = production_problems(self)
        if problems:
            raise InsecureSettingsError("refusing to start in production mode:\n- " + "\n- ".join(problems))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
