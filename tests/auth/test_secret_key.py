"""Item 17: the service refuses to start with the built-in or a short JWT secret outside demo mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.config import Settings
from tests.factories import make_org_unit, make_user

# The key every checkout of Onetable used to sign with when ONETABLE_SECRET_KEY was not set.
OLD_DEFAULT_SECRET = "dev-only-change-me-onetable-secret-key"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(None, id="unset"),
        pytest.param(OLD_DEFAULT_SECRET, id="old-default"),
        pytest.param("short-key-of-31-bytes-xxxxxxxxx", id="short"),
    ],
)
def test_item17_create_app_refuses_default_or_short_secret_outside_demo(database_url, key):
    from app.main import create_app

    kwargs = {"secret_key": key} if key is not None else {}
    with pytest.raises(Exception) as exc:
        create_app(Settings(database_url=database_url, **kwargs), manage_engine=False)
    assert "ONETABLE_SECRET_KEY" in str(exc.value)
    # A key of 32 bytes or more starts.
    app = create_app(Settings(database_url=database_url, secret_key="k" * 32), manage_engine=False)
    assert app.state.settings.secret_key.get_secret_value() == "k" * 32


def test_item17_demo_mode_uses_a_random_secret_kept_in_the_data_dir(tmp_path, monkeypatch):
    from app.main import create_app

    monkeypatch.delenv("ONETABLE_SECRET_KEY", raising=False)
    first = Settings.model_validate({"demo": True, "data_dir": tmp_path}).secret_key
    assert first is not None
    secret = first.get_secret_value()
    assert secret != OLD_DEFAULT_SECRET and len(secret.encode()) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == secret
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by the owner only
    # The next start (or another worker) signs with the same key, so logins survive a restart.
    again = Settings.model_validate({"demo": True, "data_dir": tmp_path})
    assert again.secret_key.get_secret_value() == secret
    create_app(again, manage_engine=False)  # starts
    # Another data dir, another key: no constant shared by every demo.
    other = Settings.model_validate({"demo": True, "data_dir": tmp_path / "other"})
    assert other.secret_key.get_secret_value() != secret


async def test_item17_token_signed_with_old_default_secret_is_rejected(client, session, settings):
    assert settings.secret_key.get_secret_value() != OLD_DEFAULT_SECRET
    platform = await make_org_unit(
        session, code="platform", name="平台", kind="platform", region_code="500118000000"
    )
    admin = await make_user(session, username="root", org_unit=platform, roles=["platform_admin"])
    now = datetime.now(UTC)
    forged = jwt.encode(
        {"sub": f"user:{admin.id}", "iat": now, "exp": now + timedelta(minutes=5), "jti": "x"},
        OLD_DEFAULT_SECRET,
        algorithm="HS256",
    )
    resp = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status_code == 401 and resp.json()["code"] == "auth.invalid_token"
    assert "root" not in resp.text


def test_item17_docker_image_has_no_secret_and_refuses_to_start_without_one(tmp_path):
    import json
    import os
    import re
    import subprocess
    from pathlib import Path

    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert not re.search(r"^\s*(ENV|ARG)\b.*SECRET", dockerfile, re.MULTILINE | re.IGNORECASE)
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    assert cmd[:2] == ["sh", "-c"]
    # Stand-ins for the image's commands: if the container got past the check they would run.
    (tmp_path / "onetable").write_text('#!/bin/sh\necho ran >> "$0.log"\n')
    (tmp_path / "onetable").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "ONETABLE_SECRET_KEY"}
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    run = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=10)
    assert run.returncode != 0 and "ONETABLE_SECRET_KEY" in run.stderr
    assert not (tmp_path / "onetable.log").exists()  # stopped before touching the database
