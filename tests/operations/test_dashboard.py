"""The Grafana dashboard in docs/ asks only for metrics that /metrics serves."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "humanline-operations.json"
README = ROOT / "README.md"
SUFFIXES = ("_bucket", "_count", "_sum")


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_has_a_panel_for_each_domain_metric():
    asked = " ".join(expressions())
    for metric in (
        "humanline_queue_depth",
        "humanline_time_to_human_seconds_bucket",
        "humanline_offers_made_total",
        "humanline_offers_ended_total",
        "humanline_agents_online",
        "humanline_agents_busy",
        "humanline_surge_multiplier",
        "humanline_pushes_failed_total",
        "humanline_sweeper_repairs_total",
        "humanline_side_effects_failed_total",
    ):
        assert metric in asked, metric


@pytest.mark.django_db
def test_every_metric_served_is_on_the_dashboard_and_in_the_readme(client):
    """A metric added to /metrics without a panel, or without its line in the
    README's table, fails here."""
    served = client.get("/metrics").content.decode()
    # A counter's creation time (``_created``, prometheus-client's) is no figure of its own.
    families = {
        name
        for name in re.findall(r"^# TYPE (humanline_\w+) ", served, re.M)
        if not name.endswith("_created")
    }
    asked = " ".join(expressions())
    readme = README.read_text()

    assert families
    assert sorted(f for f in families if f not in asked) == []
    assert sorted(f for f in families if f.removesuffix("_total") not in readme) == []


@pytest.mark.django_db
def test_every_metric_the_dashboard_asks_for_is_served(client):
    client.get("/healthz")  # a response, for the request metrics
    served = client.get("/metrics").content.decode()

    asked = set(re.findall(r"\b((?:humanline|django_http)_\w+)", " ".join(expressions())))
    assert asked
    for name in sorted(asked):
        family = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
        base = re.escape(family.removesuffix("_total"))
        assert re.search(rf"^# TYPE {base}(_total)? ", served, re.M), name
