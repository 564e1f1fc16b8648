"""awx/djangoops-stack.json (tools/awx-export): the collection's job templates, surveys,
inventories, credential type and workflow in the format `awx import` reads.

No AWX can run here and awxkit has no schema (its import resolves everything against a live
server), so this reads the file the way `awx import` and AWX's survey validation would
(awxkit/api/pages/api.py, awx/api/views/__init__.py _validate_spec_data, AWX 24.6): every
object has a natural key, every reference resolves to an object of the file with exactly that
key (a reference that matches nothing is dropped silently on import), and every survey
passes AWX's rules. Then against the collection: each question is its argument spec's input
(type, choices, default, required, secret), each template's playbook is one AWX offers, and
each template's example answers pass the argument specs' validation (Ansible's own
ArgumentSpecValidator, offline).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO = Path(__file__).resolve().parents[2]
EXPORT = json.loads((REPO / "awx" / "djangoops-stack.json").read_text())
SOURCE = yaml.safe_load((REPO / "awx" / "surveys.yml").read_text())
# awxkit.api.pages.api.EXPORTABLE_RESOURCES (24.6.1)
EXPORTABLE = {"users", "organizations", "teams", "credential_types", "credentials", "notification_templates",
              "projects", "inventory", "inventory_sources", "job_templates", "workflow_job_templates",
              "execution_environments", "applications", "schedules"}
# awx/main/constants.py SURVEY_TYPE_MAPPING
# the "type" of the natural keys awxkit writes (its page classes' NATURAL_KEY)
OBJECT_TYPES = {"organization", "project", "inventory", "inventory_source", "host", "group", "credential_type",
                "credential", "job_template", "workflow_job_template", "workflow_job_template_node", "label"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def _tool():
    loader = importlib.machinery.SourceFileLoader("awx_export", str(REPO / "tools" / "awx-export"))
    spec = importlib.util.spec_from_loader("awx_export", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


TOOL = _tool()
TEMPLATES = {jt["name"]: jt for jt in EXPORT["job_templates"]}
TARGET = {"type": "str", "choices": ["vms", "kubernetes"]}


def test_the_file_is_what_the_tool_writes_from_the_specs():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "awx-export"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _objects():
    """Every object `awx import` creates: top-level ones and those under related lists."""
    for kind, items in EXPORT.items():
        for item in items:
            yield item
            for related in (item.get("related") or {}).values():
                if isinstance(related, list):
                    yield from (r for r in related if "natural_key" in r)


def _references(value, path=""):
    """Every natural-key reference (a dict with a type) outside natural_key itself."""
    if isinstance(value, dict):
        if value.get("type") in OBJECT_TYPES and "natural_key" not in value:
            yield path, value
        for name, inner in value.items():
            if name != "natural_key":
                yield from _references(inner, f"{path}.{name}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _references(inner, f"{path}[{i}]")


def test_the_top_level_keys_are_awx_export_ones_and_every_object_has_a_natural_key():
    assert set(EXPORT) <= EXPORTABLE
    assert all("natural_key" in item for item in _objects())  # awx import stops on one without


def test_every_reference_is_an_object_of_the_file_or_the_organization():
    keys = [item["natural_key"] for item in _objects()]
    organization = {"name": SOURCE["organization"], "type": "organization"}
    for path, ref in _references(EXPORT):
        assert ref == organization or ref in keys, f"{path}: {ref} matches no object (awx import would drop it)"


def _validate_survey(survey: dict) -> list[str]:
    """AWX's _validate_spec_data, the parts that read the survey alone."""
    problems = []
    if not isinstance(survey.get("name"), str) or not isinstance(survey.get("description"), str):
        problems.append("name and description must be strings")
    spec = survey.get("spec")
    if not isinstance(spec, list) or not spec:
        return problems + ["spec must be a non-empty list"]
    seen = set()
    for q in spec:
        for field in ("type", "question_name", "variable"):
            if not isinstance(q.get(field), str):
                problems.append(f"{q}: {field} must be a string")
        if not isinstance(q.get("required"), bool):
            problems.append(f"{q['variable']}: required must be a boolean")
        if q["variable"] in seen:
            problems.append(f"{q['variable']} asked twice")
        seen.add(q["variable"])
        if q["type"] not in SURVEY_TYPES:
            problems.append(f"{q['variable']}: type {q['type']}")
        default = q.get("default")
        if default not in ("", None):
            if q["type"] in ("text", "textarea", "password", "multiplechoice", "multiselect") and not isinstance(default, str):
                problems.append(f"{q['variable']}: default must be a string")
            if q["type"] == "integer" and (not isinstance(default, int) or isinstance(default, bool)):
                problems.append(f"{q['variable']}: default must be an integer")
        for bound in ("min", "max"):
            if bound in q and q[bound] is not None and not isinstance(q[bound], int):
                problems.append(f"{q['variable']}: {bound} must be an integer or null")
        if q["type"] in ("multiplechoice", "multiselect"):
            choices = q.get("choices")
            if not choices:
                problems.append(f"{q['variable']}: choices are required")
            elif default not in ("", None) and default not in choices:
                problems.append(f"{q['variable']}: default {default!r} is not a choice")
        if q["type"] == "password" and default not in ("", None):
            problems.append(f"{q['variable']}: a secret has no default")
    return problems


def _surveyed():
    """(name, source entry, exported object, playbook, target) of every template and workflow."""
    for source in SOURCE["job_templates"]:
        fixed = source.get("extra_vars") or {}
        yield source["name"], source, TEMPLATES[source["name"]], source["playbook"], fixed.get("target")
    for source in SOURCE["workflows"]:
        wf = next(w for w in EXPORT["workflow_job_templates"] if w["name"] == source["name"])
        yield source["name"], source, wf, source["playbook_for_survey"], source.get("target")


SURVEYED = {name: rest for name, *rest in _surveyed()}


@pytest.mark.parametrize("name", sorted(SURVEYED))
def test_every_survey_passes_awx_rules_and_is_its_argument_spec(name):
    source, exported, playbook, target = SURVEYED[name]
    survey = exported["related"]["survey_spec"]
    assert exported["survey_enabled"] == bool(survey)
    if not survey:
        return
    assert _validate_survey(survey) == []
    asked = dict(TOOL.survey_items(source["survey"]))
    roles = TOOL.role_options()
    for q in survey["spec"]:
        # AWX 24.6 sends a default as an extra variable, answered or not: it would beat the inventory
        assert "default" not in q, q
        where, spec = TOOL.option_spec(q["variable"], playbook, target, roles)
        assert q["required"] == (bool(spec.get("required", False)) or asked[q["variable"]]), q
        kind = spec.get("type", "str")
        if spec.get("no_log"):
            assert q["type"] == "password", q
        elif kind == "bool":
            assert q["type"] == "multiplechoice" and q["choices"] == ["true", "false"], q
        elif spec.get("choices"):
            assert q["type"] == "multiplechoice" and q["choices"] == [str(c) for c in spec["choices"]], q
        else:
            assert q["type"] == {"str": "text", "path": "text", "int": "integer", "float": "float"}[kind], q
        default = spec.get("default")
        if not q["required"] and default not in (None, "", [], {}):
            assert f"else {str(default).lower() if isinstance(default, bool) else default}." in q["question_description"], q


@pytest.mark.parametrize("name", sorted(n for n, (source, *_rest) in SURVEYED.items() if source["survey"]))
def test_each_templates_extra_vars_and_example_answers_pass_the_argument_specs(name):
    """What AWX sends a job: the template's fixed extra_vars, then the survey's answers (as AWX
    sends them: a multiplechoice answer is its string). Every one must be an input a spec
    declares (the playbook form its target picks, or a role), and Ansible's own validator of
    argument specs must take them as the playbooks' validate_argument_spec and the roles do;
    a wrong answer to a typed question is refused, naming the variable."""
    source, _exported, playbook, target = SURVEYED[name]
    fixed = source.get("extra_vars") or {}
    roles = TOOL.role_options()
    answers = {v: (str(a).lower() if isinstance(a, bool) else a) for v, a in source["example"].items()}
    assert set(answers) == set(dict(TOOL.survey_items(source["survey"])))
    sent = {**fixed, **answers}
    # target is the dispatchers' (playbooks/<name>.yml): vms or kubernetes, checked by each form
    specs = {v: TARGET if v == "target" else TOOL.option_spec(v, playbook, target, roles)[1] for v in sent}
    specs = {v: {k: s[k] for k in ("type", "choices", "required", "elements") if k in s} for v, s in specs.items()}
    assert ArgumentSpecValidator(specs).validate(sent).error_messages == []
    for variable, spec in specs.items():
        if variable in answers and (spec.get("type") in ("int", "bool") or spec.get("choices")):
            wrong = {**sent, variable: "not-one-of-them"}
            assert any(variable in m for m in ArgumentSpecValidator(specs).validate(wrong).error_messages), variable


def test_the_restore_examples_confirm_with_the_backup_server_name():
    """backup_restore_confirm must be backup_server_name (the role's rule, beyond its type)."""
    server = yaml.safe_load((REPO / "roles/backup/defaults/main.yml").read_text())["backup_server_name"]
    default_db = "blog" if "database_name | default('blog')" in server else None
    for source in SOURCE["job_templates"]:
        if "backup_restore_confirm" in source.get("example", {}):
            assert source["example"]["backup_restore_confirm"] == default_db, source["name"]


def test_every_template_runs_a_playbook_awx_offers_and_never_escalates_on_the_controller():
    offered = importlib.import_module("test_awx_lists_the_playbooks").offered
    pattern = importlib.import_module("test_awx_lists_the_playbooks").AWX
    playbooks = offered(pattern)
    for jt in EXPORT["job_templates"]:
        assert jt["playbook"] in playbooks, jt["name"]
        assert jt["become_enabled"] is False, jt["name"]


def test_the_secrets_come_from_credentials_never_from_a_survey():
    roles = TOOL.role_options()
    secret = set()
    for ctype in EXPORT["credential_types"]:
        ids = [f["id"] for f in ctype["inputs"]["fields"]]
        # AWX injects an input left empty as "", which would beat the inventory
        assert ctype["inputs"]["required"] == ids, ctype["name"]
        assert ctype["kind"] in ("cloud", "net")  # the only kinds AWX takes for a custom type
        if "file" in ctype["injectors"]:
            # a file a job needs (known_hosts, a CA): each input goes into its file, and the
            # extra variables name the file, never carry the input
            files = ctype["injectors"]["file"]
            assert {v for v in files.values()} == {"{{ " + i + " }}" for i in ids}, ctype["name"]
            for value in ctype["injectors"].get("extra_vars", {}).values():
                assert "tower.filename." in value and not any("{{ " + i + " }}" in value for i in ids), ctype["name"]
            continue
        for field in ctype["inputs"]["fields"]:
            _, spec = TOOL.option_spec(field["id"], "playbooks/deploy.yml", "vms", roles)
            assert field["secret"] == bool(spec.get("no_log")), field["id"]
            assert ctype["injectors"]["extra_vars"][field["id"]] == "{{ " + field["id"] + " }}"
            secret |= {field["id"]} if field["secret"] else set()
    asked = {q["variable"] for jt in [*EXPORT["job_templates"], *EXPORT["workflow_job_templates"]]
             for q in (jt["related"].get("survey_spec") or {}).get("spec", [])}
    assert secret and not asked & secret


@pytest.mark.parametrize("target", ["VMs", "Kubernetes"])
@pytest.mark.parametrize("kind, step", [("release", "upgrade"), ("first deploy", "deploy")])
def test_each_workflow_runs_its_step_after_the_build_then_the_smoke_check(kind, step, target):
    """build -> upgrade (or deploy) -> smoke check, each after the one before succeeded, the
    release named by the workflow's own survey."""
    (workflow,) = [w for w in EXPORT["workflow_job_templates"] if w["name"] == f"djangoops {kind} {target}"]
    nodes = workflow["related"]["workflow_nodes"]
    assert [n["unified_job_template"]["name"] for n in nodes] == [
        "djangoops build", f"djangoops {step} {target}", f"djangoops smoke check {target}"]
    follows = {n["identifier"]: [s["identifier"] for s in n["related"]["success_nodes"]] for n in nodes}
    assert follows == {"build": [step], step: ["smoke check"], "smoke check": []}
    assert all(not n["related"]["failure_nodes"] and not n["related"]["always_nodes"] for n in nodes)
    asked = {q["variable"]: q["required"] for q in workflow["related"]["survey_spec"]["spec"]}
    assert asked == {"image_version": True, "image_colour": True} and workflow["survey_enabled"]


def test_a_list_input_cannot_be_asked():
    with pytest.raises(TOOL.SpecError, match="app_manage_commands .* is of type list"):
        TOOL.question("app_manage_commands", *TOOL.role_options()["app_manage_commands"][0])


def test_a_questions_description_names_the_default_it_leaves_to_the_inventory():
    q = TOOL.question("upgrade_backup", "playbooks/upgrade_vms.yml", {"type": "bool", "default": True,
                                                                     "description": "Back up first."})
    assert "default" not in q and q["question_description"].endswith("else true. (playbooks/upgrade_vms.yml)")
    required = TOOL.question("image_version", "roles/image", {"type": "str", "default": "1.0"}, required=True)
    assert required["required"] and "Unanswered" not in required["question_description"]
