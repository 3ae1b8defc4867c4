"""Every chapter is committed clean, listed in the table of contents, and runs top to bottom."""

import json
import os
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Book pages written as MyST Markdown notebooks execute too.
MYST_PAGES = sorted(p for p in (ROOT / "book").glob("*.md") if p.read_text().startswith("---\njupytext:"))


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {toc["root"]}
    for part in toc.get("parts", []):
        for chapter in part["chapters"]:
            files.add(chapter["file"])
            files.update(section["file"] for section in chapter.get("sections", []))
    return files


def test_chapters_exist():
    assert NOTEBOOKS, "no chapter notebooks found under notebooks/"
    assert NOTEBOOKS[0].name == "01_weighted_mask.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_committed_without_outputs(path):
    notebook = json.loads(path.read_text())
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [], f"{path.name} cell {index} has outputs; clear them"
            assert cell.get("execution_count") is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_has_one_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"


def test_every_page_is_in_the_toc():
    listed = toc_files()
    for path in NOTEBOOKS + MYST_PAGES:
        relative = path.relative_to(ROOT).with_suffix("").as_posix()
        assert relative in listed, f"{relative} is missing from _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb")), entry


def execute(notebook, cwd: Path):
    from nbclient import NotebookClient


    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    # MPLBACKEND=Agg in the kernel's environment would disable inline figures.
    env = {name: value for name, value in os.environ.items() if name != "MPLBACKEND"}
    client.execute(env=env)
    return notebook


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_chapter_executes(path):
    notebook = execute(nbformat.read(path, as_version=4), path.parent)
    images = sum(
        1
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    )
    assert images >= 1, f"{path.name} produced no figure"


@pytest.mark.notebook
@pytest.mark.parametrize("path", MYST_PAGES, ids=lambda p: p.name)
def test_book_page_executes(path):
    from myst_nb.core.read import read_myst_markdown_notebook

    notebook = read_myst_markdown_notebook(path.read_text())
    execute(notebook, path.parent)
