"""Unit tests for djangoops.stack.build_context: plain pytest on real temporary folders."""

from __future__ import annotations

import os

import pytest

from ansible_collections.djangoops.stack.plugins.modules import build_context as bc


@pytest.fixture
def project(tmp_path):
    src = tmp_path / "project"
    (src / "app" / "__pycache__").mkdir(parents=True)
    (src / "app" / "views.py").write_text("print('hi')\n")
    (src / "app" / "__pycache__" / "views.cpython-311.pyc").write_bytes(b"\0")
    (src / "manage.py").write_text("#!/usr/bin/env python\n")
    os.chmod(src / "manage.py", 0o755)
    (src / ".git").mkdir()
    (src / ".git" / "HEAD").write_text("ref\n")
    (src / "static" / "vendor").mkdir(parents=True)
    (src / "static" / "vendor" / "x.js").write_text("x\n")
    req = tmp_path / "requirements.txt"
    req.write_text("Django==5.2\n")
    return src, req


def sources(src, req, excludes=(".git", "__pycache__", "*.pyc")):
    return [
        {"src": str(src), "dest": "src", "excludes": list(excludes)},
        {"src": str(req), "dest": "requirements.txt", "excludes": []},
    ]


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_first_run_copies_everything_but_the_excludes(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    result = bc.run(str(ctx), sources(src, req), {"Dockerfile": "FROM x\n"}, "", False)
    assert result["changed"]
    assert tree(ctx) == ["Dockerfile", "requirements.txt", "src/app/views.py", "src/manage.py",
                         "src/static/vendor/x.js"]
    assert os.stat(ctx / "src/manage.py").st_mode & 0o777 == 0o755
    assert (ctx / "Dockerfile").read_text() == "FROM x\n"


def test_second_run_changes_nothing_and_keeps_the_fingerprint(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    first = bc.run(str(ctx), sources(src, req), {"Dockerfile": "FROM x\n"}, "args", False)
    again = bc.run(str(ctx), sources(src, req), {"Dockerfile": "FROM x\n"}, "args", False)
    assert not again["changed"]
    assert again["fingerprint"] == first["fingerprint"]


def test_a_code_change_updates_one_file_and_the_fingerprint(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    first = bc.run(str(ctx), sources(src, req), {}, "", False)
    (src / "app" / "views.py").write_text("print('changed')\n")
    second = bc.run(str(ctx), sources(src, req), {}, "", False)
    assert second["changed"] and second["updated"] == ["src/app/views.py"]
    assert second["fingerprint"] != first["fingerprint"]
    assert (ctx / "src/app/views.py").read_text() == "print('changed')\n"


def test_removed_source_files_leave_the_context(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    bc.run(str(ctx), sources(src, req), {}, "", False)
    (src / "static" / "vendor" / "x.js").unlink()
    result = bc.run(str(ctx), sources(src, req), {}, "", False)
    assert result["removed"] == ["src/static/vendor/x.js"]
    assert not (ctx / "src/static").exists(), "empty folders are removed too"


def test_extra_text_and_modes_change_the_fingerprint(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    a = bc.run(str(ctx), sources(src, req), {}, "orange", False)["fingerprint"]
    b = bc.run(str(ctx), sources(src, req), {}, "maroon", False)["fingerprint"]
    assert a != b
    os.chmod(src / "app" / "views.py", 0o600)
    result = bc.run(str(ctx), sources(src, req), {}, "maroon", False)
    assert result["updated"] == ["src/app/views.py"] and result["fingerprint"] != b


def test_check_mode_reports_but_writes_nothing(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    checked = bc.run(str(ctx), sources(src, req), {"Dockerfile": "FROM x\n"}, "", True)
    assert checked["changed"] and "src/manage.py" in checked["added"]
    assert not ctx.exists()
    real = bc.run(str(ctx), sources(src, req), {"Dockerfile": "FROM x\n"}, "", False)
    assert real["fingerprint"] == checked["fingerprint"]


def test_path_patterns_match_relative_paths(project, tmp_path):
    src, req = project
    ctx = tmp_path / "ctx"
    bc.run(str(ctx), sources(src, req, excludes=(".git", "__pycache__", "static/vendor")), {}, "", False)
    assert "src/static/vendor/x.js" not in tree(ctx)


@pytest.mark.parametrize("dest", ["/etc", "../outside", "a/../../b"])
def test_destinations_outside_the_context_are_refused(project, tmp_path, dest):
    src, req = project
    with pytest.raises(bc.ContextError, match="inside the context"):
        bc.run(str(tmp_path / "ctx"), [{"src": str(req), "dest": dest}], {}, "", False)


def test_a_missing_source_is_an_error(tmp_path):
    with pytest.raises(bc.ContextError, match="does not exist"):
        bc.run(str(tmp_path / "ctx"), [{"src": str(tmp_path / "nope"), "dest": "src"}], {}, "", False)
