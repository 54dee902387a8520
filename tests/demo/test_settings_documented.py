"""Every setting read from the environment is documented, and docker compose passes it on."""

import re

import yaml

from tests.demo.helpers import ROOT

READ_FROM_ENV = re.compile(r"""\benv_(?:str|bool|int|float|list)\(\s*["']([A-Z0-9_]+)["']""")


def _settings_read_from_env() -> set[str]:
    names = set(READ_FROM_ENV.findall((ROOT / "console" / "settings.py").read_text()))
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "CONSOLE_BATCH_SIZE"} <= names
    return names


def test_env_example_documents_every_setting_read_from_the_environment():
    documented = set(re.findall(r"^#?([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))

    assert _settings_read_from_env() - documented == set()


def test_docker_compose_gives_every_console_service_every_setting():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]

    for name in ("migrate", "web", "collector", "worker", "traffic"):
        assert _settings_read_from_env() - set(services[name]["environment"]) == set(), name
