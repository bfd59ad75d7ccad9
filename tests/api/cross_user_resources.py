"""One real resource of each kind, created as its owner through the API, for the generated cross-user test.

`KIND_OF` maps a path parameter (in a path) to the kind of resource it names; `Resources.make(kind)`
creates one and returns the values of every path parameter it fills (a message fills its
conversation's id too), plus `_`-prefixed extras that requests may use (a dataset's version id) and
the canary string its name carries: the test asserts the canary never reaches another user.

Everything is created with the owner's credentials over HTTP, except a deployment: a real one starts
an inference worker (torch), which tests/api/test_api_deployments.py exercises; access to it is
decided on its database row alone, so the row is written as the inference manager writes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from alert_helpers import raise_test_alert
from api_helpers import Account, Api
from chat_helpers import iter_events, send
from fastapi import FastAPI
from fastapi.testclient import TestClient
from ft_helpers import chat_rows
from ft_helpers import jsonl as ft_jsonl
from job_helpers import HUB_MODEL, create_job, tiny_spec

from loraforge.db.models import Deployment

CANARY = "alicecanary"
UPSTREAM_MODEL = "thinker"  # the model the scripted upstream (tests/api/openai_live.py) serves

# path parameter -> kind, or {path prefix: kind} where the same name means different things
KIND_OF: dict[str, str | dict[str, str]] = {
    "key_id": "api_key",
    "user_id": "user",
    "upload_id": "upload",
    "dataset_id": "dataset",
    "version_id": {"/api/datasets/versions/": "dataset_version", "/api/models/versions/": "model_version"},
    "preset_id": "preset",
    "template_id": "template",
    "job_id": {"/api/jobs/": "job", "/ws/jobs/": "job", "/v1/fine_tuning/jobs/": "fine_tuning_job"},
    "model_id": "model",
    "model": "model_name",
    "deployment_id": "deployment",
    "provider_id": "provider",
    "conversation_id": "conversation",
    "message_id": "message",
    "prompt_id": "prompt",
    "run_id": "playground_run",
    "file_id": "file",
    "evaluation_id": "evaluation",
    "node_id": "node",
    "alert_id": "alert",
}

# Kinds that belong to nobody: every signed-in user may read them.
PUBLIC_KINDS = {
    "preset": "built-in job presets, the same for every user",
    "node": "the machines that run jobs: every signed-in user sees how busy they are",
}


def kind_of(param: str, path: str) -> str | None:
    entry = KIND_OF.get(param)
    if isinstance(entry, dict):
        return next((kind for prefix, kind in entry.items() if path.startswith(prefix)), None)
    return entry


class Resources:
    """Creates resources owned by `owner` (accounts for the admin routes are fresh users)."""

    def __init__(self, api: Api, app: FastAPI, owner: Account, admin: Account, upstream_url: str) -> None:
        self.api = api
        self.client: TestClient = api.client
        self.app = app
        self.owner = owner
        self.admin = admin
        self.upstream_url = upstream_url
        self._serial = itertools.count(1)
        self._chat_provider: str | None = None
        self.creators: dict[str, Callable[[], dict[str, Any]]] = {
            "api_key": self.api_key,
            "user": self.user,
            "upload": self.upload,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "preset": self.preset,
            "template": self.template,
            "job": self.job,
            "fine_tuning_job": self.fine_tuning_job,
            "model": self.model,
            "model_version": self.model_version,
            "model_name": self.model_name,
            "deployment": self.deployment,
            "provider": self.provider,
            "conversation": self.conversation,
            "message": self.message,
            "prompt": self.prompt,
            "playground_run": self.playground_run,
            "file": self.file,
            "evaluation": self.evaluation,
            "node": self.node,
            "alert": self.alert,
        }

    def make(self, kind: str) -> dict[str, Any]:
        return self.creators[kind]()

    def _name(self, stem: str) -> str:
        return f"{CANARY}-{stem}-{next(self._serial)}"

    def _post(self, path: str, expected: int = 201, **kwargs: Any) -> Any:
        response = self.client.post(path, headers=self.owner.headers, **kwargs)
        assert response.status_code == expected, f"creating via {path}: {response.text}"
        return response.json()

    # ---- accounts -----------------------------------------------------------------------------------

    def api_key(self) -> dict[str, Any]:
        return {"key_id": self._post("/api/auth/api-keys", json={"name": self._name("key")})["id"]}

    def user(self) -> dict[str, Any]:
        # The admin routes act on accounts; a fresh one each time, so deleting it harms no other check.
        user = self.api.register(f"victim{next(self._serial)}")
        return {"user_id": user["id"]}

    # ---- datasets, templates, jobs -------------------------------------------------------------------

    def upload(self) -> dict[str, Any]:
        data = b'{"text": "hello"}\n'
        body = {"filename": "a.jsonl", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        return {
            "upload_id": self._post("/api/datasets/uploads", json={**body, "name": self._name("up")})["id"]
        }

    def dataset(self) -> dict[str, Any]:
        rows = [{"instruction": f"Q{i}?", "input": "", "output": f"A{i}."} for i in range(8)]
        content = "".join(json.dumps(r) + "\n" for r in rows).encode()
        created = self._post(
            "/api/datasets", files={"file": ("rows.jsonl", content)}, data={"name": self._name("ds")}
        )
        dataset = created.get("dataset", created)
        return {"dataset_id": dataset["id"], "_version_id": dataset["current_version_id"]}

    def dataset_version(self) -> dict[str, Any]:
        dataset = self.dataset()
        return {"version_id": dataset["_version_id"], **dataset}

    def preset(self) -> dict[str, Any]:
        response = self.client.get("/api/templates/presets", headers=self.owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items = body["items"] if isinstance(body, dict) else body
        return {"preset_id": items[0]["id"]}

    def template(self) -> dict[str, Any]:
        dataset = self.dataset()
        spec = tiny_spec(dataset["dataset_id"], model_name_or_path=HUB_MODEL)
        created = self._post("/api/templates", json={"name": self._name("tpl"), "spec": spec})
        return {"template_id": created["id"]}

    def job(self) -> dict[str, Any]:
        dataset = self.dataset()
        spec = tiny_spec(dataset["dataset_id"], model_name_or_path=HUB_MODEL)
        job = create_job(self.client, self.owner, spec, start=False, name=self._name("job"))
        return {"job_id": job["id"]}

    def fine_tuning_job(self) -> dict[str, Any]:
        return {"job_id": str(self.job()["job_id"])}  # /v1 names a job by its id as a string

    # ---- registry and serving ---------------------------------------------------------------------

    def model(self) -> dict[str, Any]:
        # A hub record without files: researchers may register one (server folders are for staff).
        body = {"name": self._name("model"), "source": "hub", "ref": HUB_MODEL, "download": False}
        created = self._post("/api/models", json=body)
        return {
            "model_id": created["id"],
            "_name": created["name"],
            "_version_id": created["current_version"]["id"],
        }

    def model_version(self) -> dict[str, Any]:
        model = self.model()
        return {"version_id": model["_version_id"], **model}

    def model_name(self) -> dict[str, Any]:
        return {"model": self.model()["_name"]}

    def deployment(self) -> dict[str, Any]:
        model = self.model()
        with self.app.state.db.session() as session:
            row = Deployment(
                model_version_id=model["_version_id"],
                model_name=model["_name"],
                owner_id=self.owner.id,
                backend="builtin",
                status="stopped",
            )
            session.add(row)
            session.commit()
            return {"deployment_id": row.id}

    def provider(self) -> dict[str, Any]:
        name = f"{CANARY}{next(self._serial)}"
        body = {"name": name, "base_url": f"{self.upstream_url}/v1", "api_key": "sk-upstream-test"}
        return {"provider_id": self._post("/api/providers", json=body)["id"], "_name": name}

    # ---- chat and files -----------------------------------------------------------------------------

    def _chat_model(self) -> str:
        if self._chat_provider is None:
            self._chat_provider = self.provider()["_name"]
        return f"{self._chat_provider}/{UPSTREAM_MODEL}"

    def conversation(self) -> dict[str, Any]:
        body = {"title": self._name("chat"), "model": self._chat_model()}
        return {"conversation_id": self._post("/api/chat/conversations", json=body)["id"]}

    def message(self) -> dict[str, Any]:
        conversation_id = self.conversation()["conversation_id"]
        events = send(self.client, self.owner, conversation_id, f"{CANARY} question")
        assert not [e for e in events if e.name == "error"], events
        detail = self.client.get(f"/api/chat/conversations/{conversation_id}", headers=self.owner.headers)
        assert detail.status_code == 200, detail.text
        answer = [m for m in detail.json()["messages"] if m["role"] == "assistant"][-1]
        return {"conversation_id": conversation_id, "message_id": answer["id"]}

    def prompt(self) -> dict[str, Any]:
        body = {"name": self._name("prompt"), "content": f"{CANARY} says {{{{topic}}}}"}
        return {"prompt_id": self._post("/api/chat/prompts", json=body)["id"]}

    def playground_run(self) -> dict[str, Any]:
        body = {"prompt": f"{CANARY} prompt", "models": [self._chat_model()], "params": {"max_tokens": 4}}
        with self.client.stream("POST", "/api/chat/playground", json=body, headers=self.owner.headers) as r:
            assert r.status_code == 200, r.read().decode()
            events = list(iter_events(r))
        done = [e for e in events if e.name == "done"]
        assert done, events
        return {"run_id": done[-1].data["run_id"]}

    def file(self) -> dict[str, Any]:
        created = self._post(
            "/v1/files",
            200,
            files={"file": (f"{self._name('file')}.jsonl", ft_jsonl(chat_rows()))},
            data={"purpose": "fine-tune"},
        )
        return {"file_id": created["id"]}

    # ---- evaluations ----------------------------------------------------------------------------------

    def evaluation(self) -> dict[str, Any]:
        # A draft: the scheduler is off, and a started one would only queue.
        dataset = self.dataset()
        body = {
            "name": self._name("eval"),
            "models": ["demo-tiny"],
            "dataset": dataset["dataset_id"],
            "metrics": ["exact_match"],
            "start": False,
        }
        return {"evaluation_id": self._post("/api/evaluations", json=body)["id"]}

    # ---- nodes ------------------------------------------------------------------------------------------

    def node(self) -> dict[str, Any]:
        # Nobody's: the server's own node, listed once the operations loop's first round has run.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = self.client.get("/api/nodes", headers=self.owner.headers).json()["items"]
            if items:
                return {"node_id": items[0]["id"]}
            time.sleep(0.1)
        raise AssertionError("no node was ever listed")

    # ---- alerts -----------------------------------------------------------------------------------------

    def alert(self) -> dict[str, Any]:
        # Nobody's either: a real one (a node of its own whose disk reading trips the rule). Only staff act
        # on alerts, so their routes are in the generated test's STAFF_ONLY.
        return {"alert_id": raise_test_alert(self.app, f"cross-user-{next(self._serial)}")}
