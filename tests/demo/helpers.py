import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def database_url(settings_dict: dict[str, Any], *, name: str | None = None) -> str:
    auth = settings_dict["USER"] or ""
    if settings_dict["PASSWORD"]:
        auth += f":{settings_dict['PASSWORD']}"
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{name or settings_dict['NAME']}"


def manage(*args: str, env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
