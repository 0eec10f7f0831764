"""docker-compose.yml and deploy/haproxy.cfg hold together: the services the README
describes, built from this repository, the proxy's file where the proxy reads it, every
``TICKER_*`` name one that ticker knows, and a proxy set up for long-lived streams.

No Docker engine runs where the suite runs, so the file is read with PyYAML (anchors and
``<<`` merges resolved as Compose resolves them) rather than by ``docker compose config``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from subscribers.settings import PushSettings
from ticker.settings import settings_class

ROOT = Path(__file__).resolve().parent.parent
TICKER_SERVICES = ("node1", "node2", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def haproxy() -> str:
    return (ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=value form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_compose_has_two_nodes_two_workers_proxy_redis_and_postgres(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"proxy", "node1", "node2", "worker", "redis", "postgres"}
    assert services["node1"]["command"] == ["serve"] == services["node2"]["command"]
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["proxy"]["image"].startswith("haproxy:")


def test_ticker_services_build_from_the_repository_dockerfile(compose: dict[str, Any]) -> None:
    for name in TICKER_SERVICES:
        build = compose["services"][name]["build"]
        context = build if isinstance(build, str) else build["context"]
        assert (ROOT / context / "Dockerfile").is_file(), name
    assert 'ENTRYPOINT ["ticker"]' in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_every_ticker_env_name_is_a_setting(compose: dict[str, Any]) -> None:
    known = {"TICKER_" + name.upper()
             for name in settings_class((PushSettings,)).flat_names()}
    for name, service in compose["services"].items():
        used = {k for k in env_of(service) if k.startswith("TICKER_")}
        assert used <= known, (name, used - known)


def test_ticker_services_share_postgres_and_redis_in_production(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in TICKER_SERVICES:
        env = env_of(services[name])
        assert env["TICKER_MODE"] == "production", name
        assert env["TICKER_DATABASE_URL"].startswith("postgresql://"), name
        assert "@postgres:5432/" in env["TICKER_DATABASE_URL"], name
        assert env["TICKER_BROKER_URL"].startswith("redis://redis:6379"), name
        assert env["TICKER_VAPID_SUBJECT"], name
        for needed in ("postgres", "redis"):
            assert services[name]["depends_on"][needed]["condition"] == "service_healthy"


def test_postgres_and_redis_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    mounts = {name: compose["services"][name]["volumes"] for name in ("postgres", "redis")}
    assert "postgres-data:/var/lib/postgresql/data" in mounts["postgres"]
    assert "redis-data:/data" in mounts["redis"]
    assert {"postgres-data", "redis-data"} <= set(compose["volumes"])


def test_trusted_proxies_is_the_compose_network(compose: dict[str, Any]) -> None:
    subnet = ipaddress.ip_network(compose["networks"]["ticker"]["ipam"]["config"][0]["subnet"])
    for name in TICKER_SERVICES:
        trusted = env_of(compose["services"][name])["TICKER_TRUSTED_PROXIES"]
        assert ipaddress.ip_network(trusted) == subnet, name


def test_proxy_reads_the_config_file_in_deploy(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["proxy"]["volumes"]
    sources = [m.split(":")[0] for m in mounts]
    assert "./deploy/haproxy.cfg" in sources
    assert any(m.split(":")[1] == "/usr/local/etc/haproxy/haproxy.cfg" for m in mounts)
    for source in sources:
        assert (ROOT / source).is_file(), source


def test_proxy_balances_every_node_on_its_port(compose: dict[str, Any], haproxy: str) -> None:
    servers = re.findall(r"^\s*server\s+\S+\s+([\w-]+):(\d+)\s.*\bcheck\b", haproxy, re.M)
    assert {host for host, _ in servers} == {"node1", "node2"}
    assert {port for _, port in servers} == {"8080"}
    published = compose["services"]["proxy"]["ports"]
    assert re.search(r"^\s*bind\s+:8080\s*$", haproxy, re.M)
    assert any(str(p).endswith(":8080") for p in published)


def test_proxy_checks_healthz_and_keeps_long_streams_open(haproxy: str) -> None:
    assert re.search(r"http-check send meth GET uri /healthz", haproxy)
    assert re.search(r"http-check expect status 200", haproxy)
    assert re.search(r"^\s*balance\s+leastconn", haproxy, re.M)
    hours = {name: value for name, value in
             re.findall(r"^\s*timeout\s+(client|server|tunnel)\s+(\S+)", haproxy, re.M)}
    assert set(hours) == {"client", "server", "tunnel"}
    # longer than the feed's keepalives (SSE 15 s, WebSocket ping 30 s) by far
    assert all(value.endswith("h") for value in hours.values()), hours
    # compression buffers a stream until a block fills: SSE frames would stall
    assert not re.search(r"^\s*(compression|filter\s+compression)", haproxy, re.M)


def test_worker_does_not_inherit_the_http_health_check(compose: dict[str, Any]) -> None:
    assert compose["services"]["worker"]["healthcheck"] == {"disable": True}
