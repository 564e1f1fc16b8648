"""Unit tests for djangoops.stack.k8s_objects: its checks and its loop over the reads. The
reads themselves are kubernetes.core's (K8sService.find), run against the local cluster by
every Kubernetes test; here a recorder stands in for it to show what each query asks."""

from __future__ import annotations

import pytest

from ansible_collections.djangoops.stack.plugins.modules import k8s_objects as ko


class Recorder:
    """Answers find() like K8sService: resources by kind, and records each call."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls = []

    def find(self, kind, api_version, **kwargs):
        self.calls.append({"kind": kind, "api_version": api_version, **kwargs})
        if kind == "Unknown":
            return {"resources": [], "api_found": False}
        return {"resources": self.answers.get(kind, []), "api_found": True}


def test_each_query_is_read_once_under_its_name_in_order():
    svc = Recorder({"Deployment": [{"metadata": {"name": "web"}}], "Node": [{"metadata": {"name": "n1"}}]})
    objects, found = ko.read_all(svc, {
        "deployment": {"api_version": "apps/v1", "kind": "Deployment", "name": "web"},
        "job": {"api_version": "batch/v1", "kind": "Job", "name": "web-migrate"},
        "nodes": {"kind": "Node"},
    }, [], namespace="blog")
    assert list(objects) == ["deployment", "job", "nodes"]
    assert objects == {"deployment": [{"metadata": {"name": "web"}}], "job": [],
                       "nodes": [{"metadata": {"name": "n1"}}]}
    assert found == {"deployment": True, "job": True, "nodes": True}
    assert [(c["kind"], c["api_version"], c["name"], c["namespace"]) for c in svc.calls] == [
        ("Deployment", "apps/v1", "web", "blog"), ("Job", "batch/v1", "web-migrate", "blog"), ("Node", "v1", None, "blog")]


def test_a_query_without_kind_reads_the_kind_its_name_says_with_its_own_selectors():
    svc = Recorder({})
    ko.read_all(svc, {"ConfigMap": {"label_selectors": ["a=b"]},
                      "Secret": {"namespace": "other", "field_selectors": ["type=Opaque"]}},
                ["metadata.managedFields"])
    first, second = svc.calls
    assert (first["kind"], first["label_selectors"], first["field_selectors"], first["namespace"]) == \
        ("ConfigMap", ["a=b"], [], None)
    assert (second["kind"], second["namespace"], second["field_selectors"]) == ("Secret", "other", ["type=Opaque"])
    assert first["hidden_fields"] == ["metadata.managedFields"]


def test_a_kind_the_server_does_not_know_is_reported_not_raised():
    objects, found = ko.read_all(Recorder({}), {"x": {"kind": "Unknown"}}, [])
    assert objects == {"x": []} and found == {"x": False}


@pytest.mark.parametrize(("queries", "expected"), [
    ({}, "queries is empty"),
    ({"a": "Deployment"}, "queries.a must be a mapping, not str"),
    ({"a": {"kind": "Job", "labels": ["x"]}}, "queries.a has unknown keys ['labels']"),
    ({"a": {"kind": "Job", "label_selectors": "x=y"}}, "queries.a.label_selectors must be a list of strings"),
    ({"a": {"kind": "Job", "field_selectors": [1]}}, "queries.a.field_selectors must be a list of strings"),
])
def test_bad_queries_are_named(queries, expected):
    problems = ko.query_problems(queries)
    assert any(expected in p for p in problems), problems


def test_good_queries_have_no_problem():
    assert ko.query_problems({"Job": {}, "d": {"kind": "Deployment", "api_version": "apps/v1", "name": "web",
                                            "namespace": "x", "label_selectors": ["a=b"], "field_selectors": []}}) == []
