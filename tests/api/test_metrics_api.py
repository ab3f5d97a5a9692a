"""The API's own Prometheus endpoint, scraped from a real ``hora serve``."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api


def test_the_api_serves_prometheus_metrics_by_route(api: Api) -> None:
    _, _, c = api.tenant()
    job = c.post("/v1/jobs", json={"task": "t", "delay": 600}).json()
    assert c.get(f"/v1/jobs/{job['id']}").status_code == 200
    assert c.get("/v1/jobs/no-such-job").status_code == 404
    text = httpx.get(f"{api.server.url}/metrics").text
    # Labelled by route template, never by path: ids do not make new series.
    assert 'hora_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}' \
        in text
    assert 'hora_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="404"}' \
        in text
    assert job["id"] not in text
    assert 'hora_jobs_enqueued_total{queue="default",task="t"}' in text
    assert "hora_http_request_duration_seconds_bucket" in text
