"""The Grafana dashboard only plots metrics that the mesh and analytics_svc define, with their labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import promql_parser
import pytest
from prometheus_client.metrics import MetricWrapperBase

import analytics_svc.metrics
import mesh.metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "voicebot-dashboard.json"
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def exposed_series(*modules: ModuleType) -> dict[str, frozenset[str]]:
    """Every series name the modules' metrics expose, with the label names it carries."""
    series: dict[str, frozenset[str]] = {}
    for module in modules:
        for metric in vars(module).values():
            if not isinstance(metric, MetricWrapperBase):
                continue
            family = metric.describe()[0]
            labels = frozenset(metric._labelnames)  # prometheus_client keeps them only here
            for suffix in SUFFIXES[family.type]:
                series[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


KNOWN = exposed_series(mesh.metrics, analytics_svc.metrics)


def expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


def selectors(node: Any) -> list[Any]:
    """Every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        return [node]
    if isinstance(node, promql_parser.MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, promql_parser.BinaryExpr):
        return selectors(node.lhs) + selectors(node.rhs)
    if isinstance(node, promql_parser.Call):
        return [s for arg in node.args for s in selectors(arg)]
    if isinstance(node, promql_parser.AggregateExpr):
        return selectors(node.expr) + (selectors(node.param) if node.param is not None else [])
    if isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        return selectors(node.expr)
    return []


def parse(expr: str) -> Any:
    # Grafana's interval variables are not PromQL; any duration parses the same way.
    return promql_parser.parse(re.sub(r"\$__(rate_)?interval", "5m", expr))


def test_the_dashboard_is_grafana_json_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "voicebot-mesh"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Voice-to-voice latency", "Time to first token", "Active calls", "Cache hit ratio"} <= titles
    assert any("RPC errors" in title for title in titles)


@pytest.mark.parametrize(("title", "expr"), expressions(), ids=[title for title, _ in expressions()])
def test_every_expression_references_existing_metrics_and_labels(title: str, expr: str) -> None:
    found = selectors(parse(expr))
    assert found, f"{title}: no metric in {expr}"
    for selector in found:
        assert selector.name in KNOWN, f"{title}: {selector.name} is not defined by mesh or analytics_svc"
        allowed = KNOWN[selector.name] | TARGET_LABELS
        for matcher in selector.matchers.matchers:
            assert matcher.name in allowed, f"{title}: {selector.name} has no label {matcher.name}"


def test_aggregation_labels_exist_on_what_they_aggregate() -> None:
    for title, expr in expressions():
        for by in re.findall(r"by \(([^)]*)\)", expr):
            labels = {label.strip() for label in by.split(",")}
            names = [s.name for s in selectors(parse(expr))]
            assert any(labels <= KNOWN[name] | TARGET_LABELS for name in names), f"{title}: by ({by})"


def test_a_wrong_name_is_caught() -> None:
    (selector,) = selectors(parse('sum(rate(voicebot_no_such_metric_total{stage="x"}[5m]))'))
    assert selector.name not in KNOWN
    assert "voicebot_turn_latency_seconds_bucket" in KNOWN
    assert KNOWN["voicebot_rpc_total"] == {"service", "method", "code"}
