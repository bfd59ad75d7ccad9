"""Operations settings (telemetry, alerts, mail, account links, quotas, prices), mixed into `Settings`.

Kept apart so the main settings module stays readable; every field is still one `LORAFORGE_*`
variable. Alert thresholds and prices are defaults: operators change them at run time
(`services/operations/ops_settings.py`, stored in the `ops_settings` table).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class OperationsSettings(BaseModel):
    telemetry_interval_seconds: float = Field(
        default=5.0,
        ge=0.5,
        le=300.0,
        description="How often each node's CPU, memory, disk and GPUs are sampled.",
    )
    telemetry_full_rate_hours: float = Field(
        default=24.0,
        gt=0.0,
        le=24.0 * 30,
        description="Telemetry kept at full rate this long, then averaged per minute.",
    )
    telemetry_retention_days: float = Field(
        default=7.0, gt=0.0, le=366.0, description="Per-minute telemetry averages are kept this long."
    )
    node_lost_seconds: float = Field(
        default=60.0, ge=5.0, le=86400.0, description="A node with no telemetry for this long is `lost`."
    )
    alert_gpu_temperature_c: float | None = Field(
        default=None,
        ge=30.0,
        le=120.0,
        description=(
            "GPU temperature alert (°C). Unset: each GPU's own NVML slowdown threshold (85 °C "
            "when it has none)."
        ),
    )
    alert_gpu_memory_percent: float = Field(
        default=95.0, gt=0.0, le=100.0, description="Alert when a GPU's memory use reaches this share."
    )
    alert_disk_free_gb: float = Field(
        default=5.0,
        ge=0.0,
        description="Alert (and stop placing jobs) when the data directory's disk has less free.",
    )
    alert_job_hung_minutes: float = Field(
        default=30.0, gt=0.0, description="A running job with no engine event for this long is hung."
    )
    alert_job_hung_action: Literal["alert", "stop"] = Field(
        default="alert", description="What a hung job gets besides the alert: `alert` only, or `stop` it."
    )
    alert_node_failures: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Alert when this many jobs failed on one node within the window.",
    )
    alert_node_failures_window_hours: float = Field(
        default=24.0, gt=0.0, description="The window for the repeated-failures alert, in hours."
    )
    alert_webhook_url: str | None = Field(
        default=None,
        description=(
            "A webhook every alert is POSTed to (besides operators' own webhooks); outbound policy applies."
        ),
    )
    alert_emails: str | None = Field(
        default=None,
        description="Comma-separated addresses for alert mail. Unset: every operator's and admin's email.",
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for alert mail, password resets and invitations. Unset: no mail.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP port.")
    smtp_username: str | None = Field(default=None, description="SMTP user name (unset: no login).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str = Field(default="LoRAForge <loraforge@localhost>", description="The From address of mail.")
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS (required when on)."
    )
    smtp_timeout_seconds: float = Field(
        default=10.0, gt=0.0, le=120.0, description="Timeout of one SMTP exchange."
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "The address users open LoRAForge at (e.g. https://forge.example.com), for links "
            "in mail. Unset: the request's own origin."
        ),
    )
    password_reset_ttl_minutes: int = Field(
        default=60, ge=5, le=7 * 24 * 60, description="A password-reset link expires after this many minutes."
    )
    invite_ttl_hours: int = Field(
        default=72, ge=1, le=30 * 24, description="An invitation link expires after this many hours."
    )
    quota_gpu_hours_per_month: float | None = Field(
        default=None,
        ge=0.0,
        description="Default GPU-hours per user per calendar month (UTC). Unset: no limit.",
    )
    quota_storage_gb: float | None = Field(
        default=None,
        ge=0.0,
        description="Default storage per user (datasets, runs, models), in GB. Unset: no limit.",
    )
    quota_action: Literal["refuse", "wait"] = Field(
        default="refuse",
        description="A job over a quota is refused at submit (`refuse`) or waits in the queue (`wait`).",
    )
    price_gpu_hour: float | None = Field(
        default=None, ge=0.0, description="Price of one GPU-hour (turns usage into cost)."
    )
    price_cpu_hour: float | None = Field(default=None, ge=0.0, description="Price of one CPU-hour.")
    price_currency: str = Field(
        default="USD", min_length=1, max_length=8, description="Currency of the prices."
    )
