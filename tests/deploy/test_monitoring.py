"""deploy/grafana's dashboard and deploy/prometheus's alerts query only metrics the platform exports, and the
dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from fax_runtime.metrics import FaxMetrics, default_metrics

REPO = Path(__file__).resolve().parents[2]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
# Series Prometheus makes itself, not the services.
PROMETHEUS_OWN = {"up"}


def sample_names(families) -> dict[str, str]:
    """Every series name a family produces, mapped to the family's name."""
    return {family.name + suffix: family.name for family in families for suffix in SUFFIXES.get(family.type, ("",))}


def queried_metrics(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers right before a label matcher, and the platform's prefixes."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b([a-z_][a-z0-9_]*)\{", without_strings)) | set(
        re.findall(r"\b((?:fax|process|python)_[a-z0-9_]+)\b", without_strings)
    )


def dashboard_expressions() -> list[str]:
    expressions = []
    for path in (REPO / "deploy" / "grafana").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            expressions += [target["expr"] for target in panel["targets"]]
    return expressions


def alert_expressions() -> list[str]:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "fax-alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_dashboard_queries_exported_metrics() -> None:
    exported = sample_names(default_metrics().registry.collect())
    queried = {name for expr in dashboard_expressions() for name in queried_metrics(expr)}
    assert queried, "no metric found in the dashboard"
    unknown = sorted(queried - set(exported) - PROMETHEUS_OWN)
    assert not unknown, f"the dashboard queries metrics nobody exports: {unknown}"


def test_every_dashboard_selector_is_scoped_to_the_namespace() -> None:
    for expr in dashboard_expressions():
        selectors = re.findall(r"\b[a-z_][a-z0-9_]*(\{[^}]*\})", expr)
        assert selectors and all('namespace="$namespace"' in s for s in selectors), expr


def test_dashboard_shows_every_fax_metric() -> None:
    exported = sample_names(FaxMetrics().registry.collect())
    shown = {exported[name] for expr in dashboard_expressions() for name in queried_metrics(expr) if name in exported}
    families = {family.name for family in FaxMetrics().registry.collect()}
    assert families - shown == set(), f"metrics without a panel: {sorted(families - shown)}"


def test_alerts_query_exported_metrics() -> None:
    exported = sample_names(FaxMetrics().registry.collect())
    expressions = alert_expressions()
    assert len(expressions) >= 5
    for expr in expressions:
        queried = queried_metrics(expr)
        assert queried, f"no metric in {expr!r}"
        assert queried <= set(exported), f"{expr!r} queries {sorted(queried - set(exported))}"
