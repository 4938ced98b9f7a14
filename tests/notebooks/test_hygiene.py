"""Notebook hygiene and claim bookkeeping: the rules every notebook of the course follows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib
import yaml

import companion
from companion.exercises import list_exercises

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# extra -> the modules a notebook imports that need it (pyproject.toml's optional dependencies)
EXTRAS = {
    "explain": ("companion.explain", "captum", "skimage"),
    "serving": ("companion.serving", "fastapi", "uvicorn", "httpx"),
    "warehouse": ("companion.warehouse", "duckdb", "pyarrow"),
    "tuning": ("companion.tuning", "optuna"),
    "imbalance": ("imblearn",),
    "boosting": ("xgboost",),
    "adapt": ("companion.adapt", "peft"),
    "export": ("companion.serving.export", "onnx", "onnxruntime"),
    "fairness": ("fairlearn",),
}
CLAIMS = yaml.safe_load((ROOT / "book" / "claims.yml").read_text(encoding="utf-8"))
# The claim ids of the course's outline (shared/claims.md), copied here so that nothing reads
# outside the project at run time.
EXPECTED_IDS = (
    [f"B{i:02d}" for i in range(1, 21)]
    + [f"T{i:02d}" for i in range(1, 12)]
    + [f"E{i:02d}" for i in range(1, 25)]
    + [f"S{i:02d}" for i in range(1, 5)]
    + ["G01", "G02"]
    # what the newer exam guides add (shared/claims.md, "Beyond the 2020–21 outline")
    + [f"H{i:02d}" for i in range(1, 6)]
    + [f"I{i:02d}" for i in range(1, 5)]
    + [f"A{i:02d}" for i in range(1, 6)]
    + [f"F{i:02d}" for i in range(1, 5)]
    + [f"O{i:02d}" for i in range(1, 5)]
    + [f"R{i:02d}" for i in range(1, 4)]
    + [f"D{i:02d}" for i in range(1, 4)]
)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def _claim_tags(path: Path) -> set[str]:
    return {
        tag.split(":", 1)[1]
        for cell in _cells(path)
        for tag in cell.get("metadata", {}).get("tags", [])
        if tag.startswith("claim:")
    }


def _section_id(path: Path) -> str:
    return path.stem.split("-", 1)[0]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


def test_every_notebook_is_in_the_toc_and_every_toc_file_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = _toc_files(toc)
    for nb in NOTEBOOKS:
        assert f"notebooks/{nb.stem}" in files, f"{nb.name} is missing from _toc.yml"
    for f in files:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml lists {f}, which does not exist"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_stripped(nb):
    for cell in _cells(nb):
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, (
                f"{nb.name} holds outputs: run `nbstripout {nb}`"
            )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(nb):
    cells = _cells(nb)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), (
        f"{nb.name}: the first cell must be a markdown '# ' title"
    )
    first_code = next(c for c in cells if c["cell_type"] == "code")
    colab = _source(first_code)
    assert '"google.colab" in sys.modules' in colab, f"{nb.name}: first code cell is not the Colab cell"
    assert "remove-input" in first_code.get("metadata", {}).get("tags", []), (
        f"{nb.name}: tag the Colab cell remove-input (it runs, but readers of the book do not need to see it)"
    )
    assert f"git+{companion.REPOSITORY_URL}@{companion.RELEASE_TAG}" in colab, (
        f"{nb.name}: the Colab cell must install from {companion.REPOSITORY_URL}@{companion.RELEASE_TAG}"
    )
    install_lines = [line for line in colab.splitlines() if not line.lstrip().startswith("#")]
    assert "torch" not in "\n".join(install_lines), f"{nb.name}: never install torch in Colab"
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    needed = sorted(extra for extra, modules in EXTRAS.items()
                    if any(re.search(rf"\b(import|from) {re.escape(m)}\b", code) for m in modules))
    installed = re.search(r"companion(\[[a-z,]+\])? @ git\+", colab)
    assert installed and installed.group(1) == (f"[{','.join(needed)}]" if needed else None), (
        f"{nb.name}: the Colab cell must install companion{needed or ''} (the extras its imports need), "
        f"but installs {installed.group(0) if installed else 'something else'}"
    )
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    assert "## What the exam expects" in markdown
    expects = next(_source(c) for c in cells if "## What the exam expects" in _source(c))
    assert "**Today's guide**" in expects, (
        f"{nb.name}: end 'What the exam expects' with one line on how today's guide phrases the topic"
    )
    assert "## Self-check" in markdown, f"{nb.name} has no Self-check section"
    assert "<details>" in markdown, f"{nb.name}: solutions belong in <details> blocks"
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    assert f'quiz("{_section_id(nb)}")' in code, f"{nb.name} must show quiz(\"{_section_id(nb)}\")"
    checked = re.findall(r'check\("([^"]+)"', code)
    assert checked, f"{nb.name} has no graded coding exercise"
    for exercise_id in checked:
        assert exercise_id in list_exercises(), f"{nb.name} checks unknown exercise {exercise_id}"


def test_repository_is_defined_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == companion.REPOSITORY_URL
    assert config["repository"]["branch"] == "main"
    assert config["repository"]["path_to_book"] == ""
    assert config["only_build_toc_files"] is True
    assert config["execute"]["raise_on_error"] is True
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert set(project["urls"].values()) == {companion.REPOSITORY_URL}, "pyproject.toml names another repository"


def test_claims_file_lists_every_claim_once():
    ids = [c["id"] for c in CLAIMS]
    assert ids == EXPECTED_IDS
    for c in CLAIMS:
        assert c["status"] in ("done", "planned"), c
        assert c["statement"].strip() and c["notebook"].strip(), c
        if c["status"] == "done":
            assert c["check"].strip(), f"{c['id']} is done but says nothing of what its cell checks"


def test_claim_tags_and_claims_file_agree():
    by_id = {c["id"]: c for c in CLAIMS}
    tagged = {nb.stem: _claim_tags(nb) for nb in NOTEBOOKS}
    for notebook, tags in tagged.items():
        for claim_id in tags:
            assert claim_id in by_id, f"{notebook} tags unknown claim {claim_id}"
            assert by_id[claim_id]["notebook"] == notebook, (
                f"{claim_id} is tagged in {notebook} but book/claims.yml names {by_id[claim_id]['notebook']}"
            )
    for c in CLAIMS:
        if c["status"] == "done":
            assert c["id"] in tagged.get(c["notebook"], set()), (
                f"{c['id']} is marked done but no cell of {c['notebook']} is tagged claim:{c['id']}"
            )


def test_every_claim_names_its_control():
    for c in CLAIMS:
        control = c.get("control")
        assert isinstance(control, str) and control.strip(), (
            f"{c['id']}: book/claims.yml must say in `control:` what the control is (the claim's "
            "cause removed) and what its cell asserts the control does not show"
        )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_claim_cells_assert_a_control_and_print_a_verdict(nb):
    for cell in _cells(nb):
        tags = cell.get("metadata", {}).get("tags", [])
        claim_ids = [t.split(":", 1)[1] for t in tags if t.startswith("claim:")]
        if not claim_ids:
            continue
        source = _source(cell)
        assert cell["cell_type"] == "code" and "assert" in source, (
            f"{nb.name}: the cell tagged {claim_ids} must assert the claim's outcome"
        )
        assert re.search(r"\bcontrol\b", source, re.IGNORECASE), (
            f"{nb.name}: the cell of {claim_ids} must run a control (the claim's cause removed), "
            "say which in a comment, and assert that it does not show the effect"
        )
        assert "hide-input" in tags, f"{nb.name}: tag the cell of {claim_ids} hide-input"
        for claim_id in claim_ids:
            assert f'"✓ {claim_id} — ' in source or f"'✓ {claim_id} — " in source, (
                f"{nb.name}: the cell of {claim_id} must end by printing its verdict line, "
                f'print(f"✓ {claim_id} — <what it measured>")'
            )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_headings_carry_no_claim_ids(nb):
    for cell in _cells(nb):
        if cell["cell_type"] != "markdown":
            continue
        for line in _source(cell).splitlines():
            if line.startswith("#"):
                assert not re.search(r"\b[A-Z]\d\d\b", line), (
                    f"{nb.name}: readers do not need claim ids in headings: {line!r}"
                )


# A cell that draws: it calls one of companion.plots' plot_* functions or shows a matplotlib figure.
_DRAWS = re.compile(r"\bplot_\w+\(|\bplt\.(show|imshow|plot)\(")


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_figures_say_what_they_show(nb):
    """Every cell that draws gives its figure alt text (myst-nb's ``mystnb.image.alt`` cell metadata)."""
    for cell in _cells(nb):
        if cell["cell_type"] != "code" or not _DRAWS.search(_source(cell)):
            continue
        alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt", "")
        assert len(alt.split()) >= 5, (
            f"{nb.name}: the cell {cell.get('id')} draws a figure; give it alt text that says what it shows, "
            'in its metadata: "mystnb": {"image": {"alt": "Training and validation loss per epoch ..."}}'
        )
