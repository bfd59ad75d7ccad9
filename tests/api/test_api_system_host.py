"""`GET /api/system/host`: the dashboard's reading of this machine, for signed-in users only."""

from __future__ import annotations

import psutil
from api_helpers import assert_error


def test_host_reading_for_a_signed_in_user(api, client, settings):
    assert_error(client.get("/api/system/host"), 401)

    user = api.account("alice")
    response = client.get("/api/system/host", headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["cpu_count"] == psutil.cpu_count()
    assert 0.0 <= body["cpu_percent"] <= 100.0
    assert 0 < body["memory_used_bytes"] <= body["memory_total_bytes"]
    # No NVIDIA driver on the test machines: an empty list, not an error.
    assert isinstance(body["gpus"], list)
    disk = body["disk"]
    assert 0 < disk["free_bytes"] <= disk["total_bytes"]
    # Sizes only: the server's data path is not told.
    assert str(settings.data_dir) not in response.text

    # A second reading compares against the first (no start-up wait) and stays in range.
    again = client.get("/api/system/host", headers=user.headers).json()
    assert 0.0 <= again["cpu_percent"] <= 100.0
