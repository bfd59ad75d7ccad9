"""Schemathesis over the OpenAPI document: every operation, as a researcher, 0 server errors.

Each operation of the document the server serves (one test per operation id, listed from the committed
snapshot frontend/openapi.json, which tests/unit/test_unit_openapi_snapshot.py keeps equal to it)
gets a fixed number of generated requests that fit its schema and as many that break it, the same
ones on every run (derandomized). Every response must pass `fuzz_support.CHECKS`: no 5xx (bar the
503s listed below), the status, content type and body the document declares, schema-violating input
refused with a 4xx (a value of another JSON type that pydantic's lax mode converts aside:
`fuzz_support.only_type_changes`), and no answer without a credential. Failures are collected, not
raised, so one test reports every distinct kind of failure of its operation with a curl line and,
for a 5xx, the exception the server logged.

The server is the real app under uvicorn on 127.0.0.1 with a database of its own for the module
(so it runs in the SQLite phase of scripts/test.sh only), the scheduler off (a job the fuzzer queues
never launches) and the hub offline; the caller is one researcher, signed in again if a fuzzed call
ended the session. Bounded: LORAFORGE_FUZZ_EXAMPLES (default 20) examples per mode per operation,
about 5,000 requests, two to four minutes on a 2-core machine; loopback only (see NOT_FUZZED and
`_loopback_webhook`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from api_helpers import ADMIN_PASSWORD, ADMIN_USERNAME, DEFAULT_PASSWORD
from fuzz_support import OperationRun, ServerErrorLog, schema_config, server_error_log
from live_server import live_server
from pydantic import SecretStr

from loraforge.db.migrate import migrate
from loraforge.settings import Settings

EXAMPLES = int(os.environ.get("LORAFORGE_FUZZ_EXAMPLES", "20"))
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
SNAPSHOT = Path(__file__).resolve().parents[2] / "frontend" / "openapi.json"

# Operations not fuzzed, by operation id, and why. Each starts training, generation or a model server,
# or makes the server connect to a URL the caller chose; tests of their own cover them.
NOT_FUZZED = {
    "jobs_start": "queues training (the scheduler is off here, but a started job is not what this fuzzes)",
    "jobs_resume": "queues training from a checkpoint",
    "openai_fine_tuning_jobs_create": "creates and starts a training job",
    "models_version_merge": "merges an adapter into its base model in a subprocess (loads weights)",
    "openai_create_chat_completion": "generation (starts an inference backend on first use)",
    "chat_messages_send": "generation",
    "chat_messages_regenerate": "generation",
    "chat_playground_run": "generation with up to three models",
    "deployments_create": "starts an inference worker process",
    "providers_refresh_models": "connects to the provider's base URL (the outbound-policy tests cover it)",
    "notifications_test_webhook": "posts to the caller's webhook URL (the outbound-policy tests cover it)",
}

# Server errors that are the documented answer of an optional backend that is absent here.
EXPECTED_5XX = {
    "datasets_import_hub": {503: "the Hugging Face Hub is unreachable (HF_HUB_OFFLINE=1): hub_unavailable"},
}

# Statuses the server answers that the operation's document does not list (documentation noise, not
# a bug: the answer is the project's error shape). Fixing the declaration belongs to api/routes.
UNDOCUMENTED_OK = {
    "datasets_import_hub": {503: "hub_unavailable is not declared in the route's responses"},
}


def _snapshot_operation_ids() -> list[str]:
    document = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    return [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


OPERATION_IDS = _snapshot_operation_ids()


@dataclass
class FuzzTarget:
    schema: Any  # schemathesis OpenApiSchema
    session: requests.Session
    log: ServerErrorLog
    served_ids: list[str]
    base_url: str
    username: str

    def ensure_signed_in(self) -> None:
        """Sign in again if an earlier operation ended the researcher's session (a fuzzed logout or
        password change may, by design); without this every later operation would see only 401s."""
        headers: dict[str, str] = self.schema.config.headers
        me = self.session.get(f"{self.base_url}/api/auth/me", headers=headers, timeout=30)
        if me.status_code == 200:
            return
        response = self.session.post(
            f"{self.base_url}/api/auth/login",
            json={"username_or_email": self.username, "password": DEFAULT_PASSWORD},
            timeout=30,
        )
        assert response.status_code == 200, (
            f"the researcher's session ended and signing in failed: {response.text}"
        )
        headers["Authorization"] = f"Bearer {response.json()['access_token']}"


@pytest.fixture(scope="module")
def _fuzz_database(
    tmp_path_factory: pytest.TempPathFactory, _postgres: Any, _migrated_template: str
) -> Iterator[str]:
    """A migrated database for the module's server (the per-test `database_url` is function-scoped)."""
    if _postgres is None:
        path = tmp_path_factory.mktemp("fuzz-db") / "loraforge.db"
        shutil.copyfile(_migrated_template, path)
        yield f"sqlite:///{path}"
        return
    schema, url = _postgres.create()
    migrate(url)
    yield url
    _postgres.drop(schema)


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory, _fuzz_database: str) -> Iterator[FuzzTarget]:
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        data_dir=root / "data",
        database_url=_fuzz_database,
        jwt_secret=SecretStr("fuzz-signing-key-" + "x" * 32),
        admin_username=ADMIN_USERNAME,
        admin_email="admin@example.com",
        admin_password=SecretStr(ADMIN_PASSWORD),
        web_dist_dir=root / "no-dist",
        max_body_bytes=64 * 1024,
        password_hash_time_cost=1,
        password_hash_memory_kib=1024,
        scheduler_enabled=False,  # a job the fuzzer queues never launches
        access_token_ttl_seconds=3600,  # the one login outlives the run
    )
    with pytest.MonkeyPatch.context() as env:
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            env.setenv(name, "1")  # hub imports and model downloads fail at once, never go out
        with live_server(settings) as server, server_error_log() as log, requests.Session() as session:
            researcher = server.account("fuzzer")
            document = server.http.get("/api/openapi.json").json()
            schema = schemathesis.openapi.from_dict(
                document, config=schema_config(server.base_url, researcher.token)
            )
            served = [
                op["operationId"]
                for item in document["paths"].values()
                for method, op in item.items()
                if method in HTTP_METHODS
            ]
            yield FuzzTarget(schema, session, log, served, server.base_url, researcher.username)


def _loopback_webhook(case: Any) -> None:
    """A webhook URL the fuzzer saves would be posted to when a job of the researcher's changes state
    (cancelling a queued job does): keep the fuzzed path and query, on a loopback port nobody serves."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("webhook_url"), str) and body["webhook_url"]:
        body["webhook_url"] = "http://127.0.0.1:9/" + body["webhook_url"].split("/", 3)[-1][:200]


PREPARE = {"notifications_put_settings": _loopback_webhook}


def test_the_lists_name_real_operations_and_the_snapshot_is_what_is_served(fuzz_target: FuzzTarget) -> None:
    listed = set(NOT_FUZZED) | set(EXPECTED_5XX) | set(UNDOCUMENTED_OK)
    stale = listed - set(OPERATION_IDS)
    assert not stale, f"entries for operations that no longer exist: {sorted(stale)}"
    assert sorted(fuzz_target.served_ids) == sorted(OPERATION_IDS), "run `make gen-api`"


# The operations in NOT_FUZZED are left out of the parameters (each with its reason there), not
# skipped: a skip would read as a test that could not run.
@pytest.mark.parametrize("operation_id", [op for op in OPERATION_IDS if op not in NOT_FUZZED])
def test_operation_survives_fuzzing(fuzz_target: FuzzTarget, operation_id: str) -> None:
    fuzz_target.ensure_signed_in()
    run = OperationRun(
        operation=fuzz_target.schema.find_operation_by_id(operation_id),
        session=fuzz_target.session,
        log=fuzz_target.log,
        allowed_5xx=EXPECTED_5XX.get(operation_id, {}),
        undocumented_ok=UNDOCUMENTED_OK.get(operation_id, {}),
    )
    run.run(EXAMPLES, PREPARE.get(operation_id))
    assert run.requests_sent > 0
    if run.findings:
        pytest.fail(f"{operation_id} after {run.requests_sent} requests:\n{run.report()}", pytrace=False)
