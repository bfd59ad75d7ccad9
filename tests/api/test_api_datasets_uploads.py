"""Resumable uploads: chunks in any order, retries, missing ranges, complete, hash, limits."""

from __future__ import annotations

import pytest
from api_helpers import assert_error
from dataset_helpers import ALPACA_ROWS, dataset_files, jsonl, sha256

CONTENT = jsonl(ALPACA_ROWS)  # about 2.3 KB
CHUNK = 500


@pytest.fixture
def alice(api):
    return api.account("alice")


def _session(api, account, content=CONTENT, **extra):
    body = {
        "filename": "chat.jsonl",
        "size": len(content),
        "sha256": sha256(content),
        "name": "chunked",
        **extra,
    }
    return api.client.post("/api/datasets/uploads", json=body, headers=account.headers)


def _put(api, account, upload_id, offset, data):
    return api.client.put(
        f"/api/datasets/uploads/{upload_id}/chunks",
        params={"offset": offset},
        content=data,
        headers={**account.headers, "Content-Type": "application/octet-stream"},
    )


def _chunks(content=CONTENT):
    return [(o, content[o : o + CHUNK]) for o in range(0, len(content), CHUNK)]


def test_chunks_out_of_order_with_a_retry_then_missing_ranges_then_complete(api, alice, settings):
    response = _session(api, alice)
    assert response.status_code == 201, response.text
    session = response.json()
    assert session["missing"] == [{"start": 0, "end": len(CONTENT)}]
    assert session["status"] == "open" and session["chunk_size"] > 0
    chunks = _chunks()
    # last chunk first, then the first, then the first again (a retried chunk is idempotent)
    for offset, data in [chunks[-1], chunks[0], chunks[0]]:
        put = _put(api, alice, session["id"], offset, data)
        assert put.status_code == 200, put.text
    state = api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers).json()
    assert state["missing"] == [{"start": CHUNK, "end": chunks[-1][0]}]
    assert state["received_bytes"] == CHUNK + len(chunks[-1][1])

    early = api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers)
    assert_error(early, 409, "upload_incomplete")

    for offset, data in chunks[1:-1]:
        assert _put(api, alice, session["id"], offset, data).status_code == 200
    assert (
        api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers).json()["missing"]
        == []
    )
    done = api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers)
    assert done.status_code == 200, done.text
    dataset = done.json()["dataset"]
    assert (dataset["name"], dataset["format"], dataset["rows"]) == ("chunked", "alpaca", 30)
    assert done.json()["version"]["source_sha256"] == sha256(CONTENT)

    twice = api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers)
    assert_error(twice, 409, "upload_already_completed")
    assert not (settings.data_dir / "uploads" / session["id"]).exists()


def test_complete_with_a_wrong_hash_is_refused_and_the_chunks_can_be_resent(api, alice, settings):
    session = _session(api, alice, sha256="0" * 64).json()
    for offset, data in _chunks():
        assert _put(api, alice, session["id"], offset, data).status_code == 200
    error = assert_error(
        api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers),
        422,
        "hash_mismatch",
    )
    assert sha256(CONTENT) in error["message"]
    state = api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers).json()
    assert state["missing"] == [{"start": 0, "end": len(CONTENT)}]
    assert api.client.get("/api/datasets", headers=alice.headers).json()["total"] == 0


def test_overlapping_and_beyond_size_chunks_are_refused(api, alice):
    session = _session(api, alice).json()
    assert _put(api, alice, session["id"], 0, CONTENT[:CHUNK]).status_code == 200
    assert_error(
        _put(api, alice, session["id"], CHUNK // 2, CONTENT[CHUNK // 2 : CHUNK * 2]), 409, "chunk_overlap"
    )
    assert_error(
        _put(api, alice, session["id"], len(CONTENT) - 10, CONTENT[-10:] + b"extra"),
        422,
        "chunk_out_of_range",
    )
    assert_error(_put(api, alice, session["id"], 0, b""), 422)


def test_session_beyond_the_cap_is_413_and_a_chunk_beyond_the_chunk_limit_too(api, alice, settings):
    settings.dataset_max_upload_bytes = 1000
    assert_error(_session(api, alice), 413, "payload_too_large")
    settings.dataset_max_upload_bytes = 10**9
    session = _session(api, alice).json()
    big = b"x" * (settings.dataset_chunk_max_bytes + 1)
    response = _put(api, alice, session["id"], 0, big)
    assert_error(response, 413, "payload_too_large")


def test_a_chunk_request_larger_than_the_json_limit_is_allowed(api, alice, settings):
    content = jsonl(ALPACA_ROWS * 40)  # ~90 KB, above the suite's 64 KiB JSON body limit
    assert len(content) > settings.max_body_bytes
    session = _session(api, alice, content=content).json()
    assert _put(api, alice, session["id"], 0, content).status_code == 200
    done = api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers)
    assert done.status_code == 200, done.text
    assert done.json()["dataset"]["rows"] == 1200
    # while an ordinary JSON route keeps the small limit
    assert_error(
        api.client.patch("/api/auth/me", content=b"{" + b" " * 70_000 + b"}", headers=alice.headers), 413
    )


def test_abort_removes_the_session_and_its_file(api, alice, settings):
    session = _session(api, alice).json()
    _put(api, alice, session["id"], 0, CONTENT[:CHUNK])
    assert (
        api.client.delete(f"/api/datasets/uploads/{session['id']}", headers=alice.headers).status_code == 204
    )
    assert_error(
        api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers),
        404,
        "upload_not_found",
    )
    assert dataset_files(settings.data_dir) == []


def test_expired_sessions_are_gone_and_purged(api, alice, settings):
    from datetime import timedelta

    from loraforge.db.base import utcnow
    from loraforge.db.models import DatasetUpload

    session = _session(api, alice).json()
    with api.client.app.state.db.session() as db:
        db.get(DatasetUpload, session["id"]).expires_at = utcnow() - timedelta(seconds=1)
        db.commit()
    assert_error(
        api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers),
        404,
        "upload_not_found",
    )
    _session(api, alice)  # creating a session purges expired ones
    assert not (settings.data_dir / "uploads" / session["id"]).exists()


def test_a_bad_file_completes_with_a_4xx_and_leaves_nothing(api, alice, settings):
    content = b"\x00\x01\x02" * 100
    session = _session(api, alice, content=content).json()
    _put(api, alice, session["id"], 0, content)
    assert_error(
        api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers),
        422,
        "binary_file",
    )
    assert dataset_files(settings.data_dir) == []


def test_an_upload_can_become_a_new_version(api, alice):
    first = api.client.post(
        "/api/datasets", files={"file": ("a.jsonl", jsonl(ALPACA_ROWS[:5]))}, headers=alice.headers
    ).json()["dataset"]
    session = _session(api, alice, dataset_id=first["id"], message="more rows").json()
    _put(api, alice, session["id"], 0, CONTENT)
    done = api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=alice.headers).json()
    assert done["dataset"]["id"] == first["id"] and done["dataset"]["current_version"] == 2
    assert done["version"]["message"] == "more rows" and done["version"]["rows"] == 30


def test_another_users_upload_session_is_404(api, alice):
    bob = api.account("bob")
    operator = api.account("olga", role="operator")
    session = _session(api, alice).json()
    for who in (bob, operator):
        assert_error(
            api.client.get(f"/api/datasets/uploads/{session['id']}", headers=who.headers),
            404,
            "upload_not_found",
        )
        assert_error(_put(api, who, session["id"], 0, CONTENT[:CHUNK]), 404)
        assert_error(
            api.client.post(f"/api/datasets/uploads/{session['id']}/complete", headers=who.headers), 404
        )
        assert_error(api.client.delete(f"/api/datasets/uploads/{session['id']}", headers=who.headers), 404)
    assert api.client.get(f"/api/datasets/uploads/{session['id']}", headers=alice.headers).status_code == 200
