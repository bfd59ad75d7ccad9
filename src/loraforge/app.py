"""`create_app(settings)`: the FastAPI application (API under /api, metrics, the SPA at /)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loraforge import __version__
from loraforge.api.errors import install_error_handlers
from loraforge.api.metrics_access import MetricsReader
from loraforge.api.middleware import (
    BodySizeLimitMiddleware,
    HttpMetrics,
    MetricsMiddleware,
    RequestBodyTimeout,
    SecurityHeadersMiddleware,
    body_timeout_response,
)
from loraforge.api.openai import v1_router
from loraforge.api.openai.files import files_body_limits
from loraforge.api.routes import api_router
from loraforge.api.routes.datasets import upload_body_limits
from loraforge.api.routes.ws import router as ws_router
from loraforge.api.routes.ws_notifications import router as ws_notifications_router
from loraforge.api.routes.ws_operations import router as ws_operations_router
from loraforge.api.spa import SpaFiles
from loraforge.api.ws_limits import WebSocketSlots
from loraforge.db.migrate import is_at_head, migrate
from loraforge.db.session import Database
from loraforge.errors import ServiceError
from loraforge.executors import make_executor
from loraforge.inference import upstream as providers_client
from loraforge.services.accounts import passwords
from loraforge.services.accounts.bootstrap import ensure_first_admin
from loraforge.services.evaluation import launch_spec as evaluation_launch
from loraforge.services.evaluation import sync as evaluation_sync
from loraforge.services.export import create as export_create
from loraforge.services.export import launch_spec as export_launch
from loraforge.services.export import sync as export_sync
from loraforge.services.jobs import eval_request
from loraforge.services.jobs import housekeeping as background
from loraforge.services.jobs.scheduler import Scheduler
from loraforge.services.operations import loop as operations_loop
from loraforge.services.operations import migration as operations_migration
from loraforge.services.operations.metrics_export import NodeCollector
from loraforge.services.platform.event_hub import EventHub
from loraforge.services.serving.manager import InferenceManager
from loraforge.services.usage import accounting as usage_accounting
from loraforge.settings import Settings, get_settings

logger = logging.getLogger("loraforge")


class SchemaOutdatedError(RuntimeError):
    """The database is not at the newest migration and auto_migrate is off."""


def prepare_database(settings: Settings, database: Database) -> None:
    """Bring the schema to head (or check it), ensure the JWT secret exists, create the first admin."""
    if settings.auto_migrate:
        migrate(database.url)
    elif not is_at_head(database.url):
        raise SchemaOutdatedError("the database schema is outdated: run `loraforge migrate` first")
    settings.signing_key()  # creates <data_dir>/secrets/jwt_secret on first start when unset
    with database.session() as session:
        try:
            created = ensure_first_admin(session, settings=settings)
        except ServiceError as exc:
            logger.error("could not create the first admin %r: %s", settings.admin_username, exc.message)
            return
    if created is not None and created.generated_password is not None:
        # Printed, never logged: a log file would keep the password after it is changed.
        print(
            "\n" + "=" * 72 + "\n"
            f"LoRAForge created the first admin account.\n"
            f"  username: {created.username}\n"
            f"  password: {created.generated_password}\n"
            "This password is shown only once. Log in and change it now.\n" + "=" * 72 + "\n",
            file=sys.stderr,
            flush=True,
        )
    elif created is not None:
        logger.info("created admin user %r from LORAFORGE_ADMIN_PASSWORD", created.username)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.check_production_safety()
    passwords.configure_from(settings)
    database = Database(settings.sqlalchemy_url)
    hub = EventHub()
    # Evaluations, exports and operations live above jobs: their stages' spec builders and their
    # per-tick syncs come in here (usage is below jobs but is brought up to date on the same tick).
    executor = make_executor(settings)
    scheduler = Scheduler(
        settings, database, executor, hub=hub,
        hooks=[functools.partial(evaluation_sync.sync, settings=settings),
               functools.partial(export_sync.sync, settings=settings),
               functools.partial(operations_migration.after_tick, settings=settings),
               functools.partial(usage_accounting.sync, settings=settings)],
        stages={eval_request.STAGE: evaluation_launch.build, export_create.STAGE: export_launch.build},
    )  # fmt: skip
    inference = InferenceManager(settings, database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(prepare_database, settings, database)
        # The scheduler's loop; engine processes are not children of it and outlive a shutdown.
        task = asyncio.create_task(scheduler.run()) if settings.scheduler_enabled else None
        # Housekeeping: webhook delivery and the retention sweep (services/background.py).
        housekeeping = asyncio.create_task(background.run(settings, database, hub))
        # Deployments: idle inference backends are stopped (services/serving/manager.py).
        inference_loop = asyncio.create_task(inference.run())
        # Operations: nodes synced and sampled, telemetry stored and thinned, health rules evaluated.
        ops_loop = asyncio.create_task(operations_loop.run(settings, database, hub, executor=executor))
        try:
            yield
        finally:
            ops_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ops_loop
            inference_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inference_loop
            await inference.close()
            await providers_client.aclose_client()  # the gateway's shared upstream HTTP client
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await run_in_threadpool(scheduler.close)
            database.dispose()

    app = FastAPI(
        title="LoRAForge",
        version=__version__,
        description="Self-hosted multi-user platform for fine-tuning open LLMs.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.scheduler = scheduler
    app.state.hub = hub
    app.state.inference = inference
    app.state.spa = SpaFiles(settings.resolved_web_dist_dir)
    app.state.ws_slots = WebSocketSlots(settings.ws_max_per_user)  # open WebSockets per user
    # A registry per app: tests build many apps in one process, and the default global registry
    # refuses a second metric of the same name.
    registry = CollectorRegistry()
    registry.register(NodeCollector(database))  # node and GPU gauges from the latest telemetry
    metrics = HttpMetrics(registry)
    app.state.metrics = metrics

    install_error_handlers(app)
    app.add_exception_handler(RequestBodyTimeout, body_timeout_response)  # 408, connection closed
    app.include_router(api_router, prefix="/api")
    app.include_router(v1_router, prefix="/v1")  # OpenAI-compatible (api/openai/)
    app.include_router(ws_router)  # /ws/...: WebSockets authenticate inside the handler
    app.include_router(ws_notifications_router)  # /ws/notifications
    app.include_router(ws_operations_router)  # /ws/operations

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(_reader: MetricsReader) -> Response:
        """The metrics token's or an admin's only (`api/metrics_access.py`)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # Added last = outermost: metrics see every response, including 413s from the size limit.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        route_limits=[*upload_body_limits(settings), *files_body_limits(settings)],
        body_timeout_seconds=settings.request_body_timeout_seconds,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
