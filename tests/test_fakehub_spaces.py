"""The fake Hub's Spaces API and OpenID provider (``tests/fixtures/fakehub_spaces.py``), through the real
``huggingface_hub`` 2.4 client and plain HTTP: what the other tests rely on behaves like the Hub."""

from __future__ import annotations

import secrets

import httpx
import pytest


@pytest.fixture
def owner(fake_hub):
    name = "fh" + secrets.token_hex(3)
    token = "hf_fh_" + secrets.token_hex(8)
    fake_hub.add_user(name, token)
    spaces = fake_hub.app.spaces
    before = spaces.build_seconds
    served = spaces.serving_argilla()  # an earlier test may have put the real Argilla behind Argilla Spaces
    spaces.build_seconds = 0.2
    spaces.stop_serving_argilla()  # these tests are about the Hub's API: no owner is created anywhere
    yield name, token
    spaces.build_seconds = before
    if served is not None:
        spaces.serve_argilla(*served)


def test_templates_create_runtime_secrets_variables_sleeptime(fake_hub, owner):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    name, token = owner
    api = HfApi()
    assert "argilla/argilla-template-space" in {t.repo_id for t in api.list_space_templates(token=token)}
    with pytest.raises(ValueError, match="Unknown Space template"):
        api.create_repo(f"{name}/x", repo_type="space", space_template="nobody/none", token=token)
    api.create_repo(
        f"{name}/app",
        repo_type="space",
        space_template="argilla/argilla-template-space",
        space_secrets=[{"key": "API_KEY", "value": "s3cret-value"}],
        space_variables=[{"key": "USERNAME", "value": name}],
        token=token,
    )
    assert api.get_space_runtime(f"{name}/app", token=token).stage == "BUILDING"
    runtime = api.wait_for_space(f"{name}/app", timeout=30, poll_interval=0.1, token=token)
    assert runtime.stage == "RUNNING"
    info = api.space_info(f"{name}/app", token=token)
    assert info.sdk == "docker" and "argilla" in info.tags and info.host
    assert api.get_space_variables(f"{name}/app", token=token)["USERNAME"].value == name
    api.add_space_variable(f"{name}/app", "LANG", "nld", token=token)
    api.delete_space_variable(f"{name}/app", "USERNAME", token=token)
    assert set(api.get_space_variables(f"{name}/app", token=token)) == {"LANG"}
    api.add_space_secret(f"{name}/app", "PASSWORD", "other-secret", token=token)
    api.delete_space_secret(f"{name}/app", "API_KEY", token=token)
    assert set(fake_hub.app.spaces.space(f"{name}/app").secrets) == {"PASSWORD"}
    assert api.set_space_sleep_time(f"{name}/app", 3600, token=token).sleep_time == 3600
    # No endpoint ever returns a secret's value.
    for path in ("", "/runtime", "/variables"):
        body = httpx.get(f"{fake_hub.url}/api/spaces/{name}/app{path}", headers={"authorization": f"Bearer {token}"})
        assert "other-secret" not in body.text
    # Another user may see the public Space, not its logs or variables, and may not change it.
    other = "hf_other_" + secrets.token_hex(6)
    fake_hub.add_user("fh-other", other)
    assert api.get_space_runtime(f"{name}/app", token=other).stage == "RUNNING"
    with pytest.raises(HfHubHTTPError):
        api.add_space_secret(f"{name}/app", "PASSWORD", "x", token=other)
    with pytest.raises(HfHubHTTPError):
        list(api.fetch_space_logs(f"{name}/app", build=True, token=other))


def test_build_error_logs_restart_and_buckets(fake_hub, owner):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    name, token = owner
    api = HfApi()
    fake_hub.app.spaces.fail_build(f"{name}/broken", ["Step 2/3 : RUN false", "ERROR: exit code 1"])
    api.create_repo(f"{name}/broken", repo_type="space", space_sdk="docker", token=token)
    assert api.wait_for_space(f"{name}/broken", timeout=30, poll_interval=0.1, token=token).stage == "BUILD_ERROR"
    lines = [line.rstrip() for line in api.fetch_space_logs(f"{name}/broken", build=True, token=token)]
    assert lines[-2:] == ["Step 2/3 : RUN false", "ERROR: exit code 1"]
    api.restart_space(f"{name}/broken", token=token)  # the failure was for one build: the next one runs
    assert api.wait_for_space(f"{name}/broken", timeout=30, poll_interval=0.1, token=token).stage == "RUNNING"

    api.create_bucket(f"{name}/data", private=True, token=token)
    with pytest.raises(HfHubHTTPError):
        api.create_bucket(f"{name}/data", private=True, token=token)  # 409: it exists
    api.create_bucket(f"{name}/data", private=True, exist_ok=True, token=token)
    with pytest.raises(HfHubHTTPError):
        api.create_bucket("someone-else/data", token=token)  # 403: not her namespace


def test_openid_discovery_keys_and_refusals(fake_hub):
    base = fake_hub.url
    meta = httpx.get(f"{base}/.well-known/openid-configuration").json()
    assert meta["issuer"] == base and meta["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert {"openid", "profile", "read-repos", "write-repos", "manage-repos", "inference-api"} <= set(
        meta["scopes_supported"]
    )
    assert httpx.get(meta["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"
    fake_hub.app.oidc.register_client("fh-client", "fh-secret")
    ok = {"client_id": "fh-client", "redirect_uri": "https://app/login/callback", "scope": "openid profile"}
    assert httpx.get(f"{base}/oauth/authorize", params=ok).status_code == 200
    assert httpx.get(f"{base}/oauth/authorize", params={**ok, "client_id": "nope"}).status_code == 400
    assert httpx.get(f"{base}/oauth/authorize", params={**ok, "scope": "openid admin"}).status_code == 400
    assert httpx.get(f"{base}/oauth/authorize", params={**ok, "redirect_uri": "https://evil/x"}).status_code == 400
    token = httpx.post(f"{base}/oauth/token", data={"code": "x"}, auth=("fh-client", "wrong"))
    assert token.status_code == 401
    token = httpx.post(f"{base}/oauth/token", data={"code": "x", "redirect_uri": ""}, auth=("fh-client", "fh-secret"))
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    assert httpx.get(f"{base}/oauth/userinfo", headers={"authorization": "Bearer nope"}).status_code == 401
