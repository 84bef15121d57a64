"""The web app keeps other sites away (issue 15, item 11): trusted Host names (DNS rebinding), no
cross-origin POSTs (a plain HTML form on any page), and security headers on every answer."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from nndl.web.app import create_app
from nndl.web.security import allowed_hosts_for
from tests.web.helpers import digit_model


@pytest.fixture(scope="module")
def local():
    """The app as `nndl serve` runs it on 127.0.0.1, reached as http://localhost:8000."""
    app = create_app(digit_model(), allowed_hosts=allowed_hosts_for("127.0.0.1"))
    return TestClient(app, base_url="http://localhost:8000")


def test_loopback_servers_answer_only_to_loopback_names(local):
    assert local.get("/api/health").status_code == 200
    for host in ("127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert local.get("/api/health", headers={"Host": host}).status_code == 200
    rebound = local.get("/api/health", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 400
    assert rebound.json()["error"] == "BadHost" and "--allowed-host attacker.example" in rebound.json()["detail"]
    assert allowed_hosts_for("0.0.0.0", ["digits.example"]) == ["0.0.0.0", "digits.example"]


def test_a_cross_origin_post_is_refused_and_a_same_origin_one_served(local):
    body = {"image": "not an image"}
    evil = local.post("/api/predict", json=body, headers={"Origin": "https://attacker.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "CrossOrigin"
    form = local.post("/api/read", files={"image": ("d.png", b"x", "image/png")},
                      headers={"Origin": "http://attacker.example"})
    assert form.status_code == 403
    own = local.post("/api/predict", json=body, headers={"Origin": "http://localhost:8000"})
    assert own.status_code == 400 and own.json()["error"] != "CrossOrigin"  # served: the image is bad
    assert local.post("/api/predict", json=body).status_code == 400           # no Origin (curl, scripts)


def test_every_answer_carries_the_security_headers(local):
    for path in ("/", "/api/health", "/static/app.js"):
        headers = local.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "script-src 'self'" in headers["content-security-policy"]
    assert "content-security-policy" not in local.get("/docs").headers      # FastAPI's docs use inline scripts
    refused = local.get("/", headers={"Host": "attacker.example"})
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_only_the_documented_content_types_are_accepted(local):
    documented = set(local.get("/openapi.json").json()["paths"]["/api/predict"]["post"]["requestBody"]["content"])
    assert documented == {"multipart/form-data", "image/png", "image/jpeg", "application/json"}
    for media in ("application/x-www-form-urlencoded", "text/plain", "image/gif"):
        response = local.post("/api/predict", content=b"image=abc", headers={"Content-Type": media})
        assert response.status_code == 415 and response.json()["error"] == "UnsupportedMediaType"
