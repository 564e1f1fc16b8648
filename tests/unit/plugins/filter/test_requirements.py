"""Unit tests for djangoops.stack.requirements_tree: plain pytest on real temporary folders."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.djangoops.stack.plugins.filter import requirements as req


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def dests(tree):
    return [f["dest"] for f in tree["files"]]


def test_a_lone_file_is_its_own_tree(tmp_path):
    top = write(tmp_path / "requirements.txt", "Django==5.2\n")
    tree = req.requirements_tree(str(top))
    assert tree["files"] == [{"src": str(top), "dest": "requirements.txt"}]
    assert tree["entry"] == "requirements.txt" and tree["root"] == str(tmp_path)
    assert not tree["included"]
    assert tree["layout"] == [{"src": str(top), "dest": "requirements.txt"}] and tree["entry_file"] == ""


def test_nested_includes_and_constraints_in_every_spelling(tmp_path):
    top = write(tmp_path / "requirements" / "prod.txt",
                "-r base.txt\n--constraint=constraints.txt  # pins\ngunicorn\n")
    write(tmp_path / "requirements" / "base.txt", "--requirement common/core.txt\n-cextra.txt\nDjango\n")
    write(tmp_path / "requirements" / "constraints.txt", "Django==5.2\n")
    write(tmp_path / "requirements" / "extra.txt", "")
    write(tmp_path / "requirements" / "common" / "core.txt", "--requirement\\\n=../../shared.txt\n")
    write(tmp_path / "shared.txt", "# -r not-a-file.txt\nwhitenoise\n")
    tree = req.requirements_tree(str(top))
    assert dests(tree) == ["requirements/prod.txt", "requirements/base.txt", "requirements/common/core.txt",
                           "shared.txt", "requirements/extra.txt", "requirements/constraints.txt"]
    assert tree["root"] == str(tmp_path) and tree["entry"] == "requirements/prod.txt"
    assert tree["included"]
    assert [f["dest"] for f in tree["layout"]] == ["requirements/" + d for d in dests(tree)]
    assert tree["entry_file"] == "-r requirements/requirements/prod.txt\n"


def test_a_file_included_twice_is_copied_once(tmp_path):
    top = write(tmp_path / "a.txt", "-r b.txt\n-r c.txt\n")
    write(tmp_path / "b.txt", "-c pins.txt\n")
    write(tmp_path / "c.txt", "-c pins.txt\n")
    write(tmp_path / "pins.txt", "x==1\n")
    assert dests(req.requirements_tree(str(top))) == ["a.txt", "b.txt", "pins.txt", "c.txt"]


def test_a_missing_include_names_the_variable_and_the_path(tmp_path):
    top = write(tmp_path / "requirements.txt", "Django\n-r base.txt\n")
    with pytest.raises(AnsibleFilterError) as error:
        req.requirements_tree(str(top))
    message = str(error.value)
    assert "image_requirements_file" in message
    assert str(tmp_path / "base.txt") in message and "does not exist" in message and "line 2" in message


def test_a_missing_top_file_names_the_variable(tmp_path):
    with pytest.raises(AnsibleFilterError, match="image_requirements_file '.*nope.txt' does not exist"):
        req.requirements_tree(str(tmp_path / "nope.txt"))


def test_a_cycle_is_refused_naming_it(tmp_path):
    top = write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "-c a.txt\n")
    with pytest.raises(AnsibleFilterError, match="cycle") as error:
        req.requirements_tree(str(top))
    assert "a.txt -> " in str(error.value) and "b.txt" in str(error.value)


def test_a_file_including_itself_is_a_cycle(tmp_path):
    top = write(tmp_path / "a.txt", "-r ./a.txt\n")
    with pytest.raises(AnsibleFilterError, match="cycle"):
        req.requirements_tree(str(top))


@pytest.mark.parametrize("line", ["-r https://example.com/base.txt", "-r /etc/base.txt"])
def test_includes_that_cannot_travel_are_refused(tmp_path, line):
    top = write(tmp_path / "requirements.txt", line + "\n")
    with pytest.raises(AnsibleFilterError, match="image_requirements_file"):
        req.requirements_tree(str(top))


def test_the_digest_follows_every_file(tmp_path):
    top = write(tmp_path / "requirements.txt", "-r base.txt\n")
    base = write(tmp_path / "base.txt", "Django==5.2\n")
    first = req.requirements_tree(str(top))["digest"]
    assert req.requirements_tree(str(top))["digest"] == first
    base.write_text("Django==5.2.1\n")
    assert req.requirements_tree(str(top))["digest"] != first


def test_environment_variables_are_expanded_as_pip_does(tmp_path, monkeypatch):
    monkeypatch.setenv("REQS_DIR", "sub")
    top = write(tmp_path / "requirements.txt", "-r ${REQS_DIR}/base.txt\n")
    write(tmp_path / "sub" / "base.txt", "x\n")
    assert dests(req.requirements_tree(str(top))) == ["requirements.txt", "sub/base.txt"]
