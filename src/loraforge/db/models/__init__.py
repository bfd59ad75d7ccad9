"""ORM models (SQLAlchemy 2, typed `Mapped[]` columns), one module per domain.

Owned resources carry an `owner_id` foreign key to `users.id` and go through
`loraforge.services.platform.ownership` for access checks. Every schema change needs an Alembic
migration in `db/migrations/versions/`. Importing this package registers every table on
`Base.metadata`.
"""

from loraforge.db.base import utcnow
from loraforge.db.models.accounts import ROLE_VALUES, ApiKey, LoginAttempt, RefreshToken, Role, User
from loraforge.db.models.chat import ChatMessage, Conversation, PlaygroundRun, PromptTemplate
from loraforge.db.models.datasets import Dataset, DatasetUpload, DatasetUploadChunk, DatasetVersion
from loraforge.db.models.evaluation import Evaluation, EvaluationRun
from loraforge.db.models.files import StoredFile
from loraforge.db.models.jobs import (
    ACTIVE,
    FINAL,
    JOB_STATUS_VALUES,
    PENDING_OR_ACTIVE,
    RESUMABLE,
    Job,
    JobEvent,
    JobStatus,
    JobTemplate,
)
from loraforge.db.models.operations import (
    NODE_STATUS_VALUES,
    SCHEDULABLE,
    AccountLink,
    Alert,
    AlertStatus,
    JobUsage,
    Node,
    NodeSample,
    NodeStatus,
    OpsSetting,
    UserQuota,
)
from loraforge.db.models.platform import AuditLog, Notification
from loraforge.db.models.registry import ModelVersion, RegisteredModel
from loraforge.db.models.serving import Deployment, Provider

__all__ = [
    "ACTIVE",
    "FINAL",
    "JOB_STATUS_VALUES",
    "NODE_STATUS_VALUES",
    "PENDING_OR_ACTIVE",
    "RESUMABLE",
    "ROLE_VALUES",
    "SCHEDULABLE",
    "AccountLink",
    "Alert",
    "AlertStatus",
    "ApiKey",
    "AuditLog",
    "ChatMessage",
    "Conversation",
    "Dataset",
    "DatasetUpload",
    "DatasetUploadChunk",
    "DatasetVersion",
    "Deployment",
    "Evaluation",
    "EvaluationRun",
    "Job",
    "JobEvent",
    "JobStatus",
    "JobTemplate",
    "JobUsage",
    "LoginAttempt",
    "ModelVersion",
    "Node",
    "NodeSample",
    "NodeStatus",
    "Notification",
    "OpsSetting",
    "PlaygroundRun",
    "PromptTemplate",
    "Provider",
    "RefreshToken",
    "RegisteredModel",
    "Role",
    "StoredFile",
    "User",
    "UserQuota",
    "utcnow",
]
