"""A resource that is not yours answers exactly like one that does not exist: same status, same code.

A different code for "not yours" (the ownership policy's) than for "absent" (the service's) would
tell a stranger which ids are taken.
"""

from __future__ import annotations

from typing import Any

from api_helpers import Account, Api
from job_helpers import create_job, sample_dataset, tiny_spec

ABSENT_ID = 999_999


def _code(api: Api, method: str, path: str, who: Account) -> str:
    response = api.client.request(method, path, headers=who.headers)
    assert response.status_code == 404, response.text
    code: str = response.json()["error"]["code"]
    return code


def _same_answer(
    api: Api, method: str, path: str, absent_path: str, stranger: Account, owner: Account
) -> str:
    not_yours = _code(api, method, path, stranger)
    absent = _code(api, method, absent_path, owner)
    assert not_yours == absent, (path, not_yours, absent)
    return not_yours


def test_datasets_jobs_keys_uploads_and_files_answer_strangers_like_absent_ids(api):
    alice, bob = api.account("alice"), api.account("bob")
    dataset = sample_dataset(api.client, alice)
    job = create_job(api.client, alice, tiny_spec(dataset["id"]))
    key = api.client.post("/api/auth/api-keys", json={"name": "k"}, headers=alice.headers).json()
    upload = api.client.post(
        "/api/datasets/uploads",
        json={"filename": "a.jsonl", "size": 10, "sha256": "0" * 64, "name": "u"},
        headers=alice.headers,
    ).json()
    uploaded = api.client.post(
        "/v1/files",
        files={"file": ("notes.txt", b"some notes\n")},
        data={"purpose": "assistants"},
        headers=alice.headers,
    )
    assert uploaded.status_code == 200, uploaded.text
    file_id = uploaded.json()["id"]

    absent_upload = "/api/datasets/uploads/" + "0" * 32
    cases: list[tuple[str, str, str, str]] = [
        ("GET", f"/api/datasets/{dataset['id']}", f"/api/datasets/{ABSENT_ID}", "dataset_not_found"),
        ("GET", f"/api/jobs/{job['id']}", f"/api/jobs/{ABSENT_ID}", "job_not_found"),
        ("POST", f"/api/jobs/{job['id']}/start", f"/api/jobs/{ABSENT_ID}/start", "job_not_found"),
        ("DELETE", f"/api/auth/api-keys/{key['id']}", f"/api/auth/api-keys/{ABSENT_ID}", "api_key_not_found"),
        ("GET", f"/api/datasets/uploads/{upload['id']}", absent_upload, "upload_not_found"),
        (
            "GET",
            f"/api/datasets/versions/{dataset['current_version_id']}",
            f"/api/datasets/versions/{ABSENT_ID}",
            "version_not_found",
        ),
    ]
    for method, path, absent_path, expected in cases:
        assert _same_answer(api, method, path, absent_path, bob, alice) == expected

    # /v1 speaks OpenAI's error shape; the code is the same for both there too.
    not_yours: dict[str, Any] = api.client.get(f"/v1/files/{file_id}", headers=bob.headers).json()
    absent: dict[str, Any] = api.client.get(f"/v1/files/file-{ABSENT_ID}", headers=alice.headers).json()
    assert not_yours["error"]["code"] == absent["error"]["code"] == "file_not_found"
