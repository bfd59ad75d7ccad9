"""One module per resource; `api_router` gathers them under /api (see loraforge.app)."""

from fastapi import APIRouter

from loraforge.api.errors import ERROR_RESPONSES
from loraforge.api.routes import (
    account_links,
    admin,
    alerts,
    auth,
    chat_conversations,
    chat_messages,
    chat_playground,
    chat_prompts,
    datasets,
    deployments,
    evaluation_reports,
    evaluations,
    exports,
    health,
    jobs,
    models,
    node_actions,
    nodes,
    notifications,
    operations,
    providers,
    retention,
    system,
    usage,
)
from loraforge.api.routes import job_templates as templates

api_router = APIRouter(responses=ERROR_RESPONSES)
api_router.include_router(health.router)
api_router.include_router(system.router)
api_router.include_router(auth.router)
api_router.include_router(admin.router)
api_router.include_router(datasets.router)
# templates before jobs: it holds /jobs/spec-schema and /jobs/estimate, which /jobs/{job_id} would
# otherwise capture (422: not an integer).
api_router.include_router(templates.router)
api_router.include_router(jobs.router)
api_router.include_router(notifications.router)
api_router.include_router(retention.router)
api_router.include_router(models.router)
api_router.include_router(exports.router)
api_router.include_router(deployments.router)
api_router.include_router(providers.router)
api_router.include_router(chat_conversations.router)
api_router.include_router(chat_messages.router)
api_router.include_router(chat_prompts.router)
api_router.include_router(chat_playground.router)
# Before any /evaluations/{evaluation_id} route: it holds /evaluations/compare/report.
api_router.include_router(evaluation_reports.router)
api_router.include_router(evaluations.router)
# Operations: nodes and their actions, alerts, usage and quotas, the operators' summary, account links.
api_router.include_router(nodes.router)
api_router.include_router(node_actions.router)
api_router.include_router(alerts.router)
api_router.include_router(usage.router)
api_router.include_router(operations.router)
api_router.include_router(account_links.router)

__all__ = ["api_router"]
