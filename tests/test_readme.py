"""The README's results table is the stored run's: the rows of notebook 5's table, as printed there."""

import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_5 = ROOT / "notebooks" / "05_upsampling_and_skip_connections.ipynb"


def stored_table() -> dict[str, tuple[str, str]]:
    """{model: (pixel accuracy, mIoU)} from notebook 5's printed comparison of every model."""
    notebook = nbformat.read(NOTEBOOK_5, as_version=4)
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and "print(format_report(reports))" in c.source]
    text = "".join(output.get("text", "") for output in cell.outputs)
    rows = re.findall(r"^(\S.*?)\s{2,}(\d\.\d{3})\s+(\d\.\d{3})\s", text, re.MULTILINE)
    return {name: (accuracy, miou) for name, accuracy, miou in rows}


def readme_table() -> dict[str, tuple[str, str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|]+?)(?: \(no pixel labels\))? \| (\d\.\d{3}) \| (\d\.\d{3}) \|$", readme, re.MULTILINE)
    return {name: (accuracy, miou) for name, accuracy, miou in rows}


def test_the_readme_results_are_notebook_5s_stored_table():
    stored = stored_table()
    assert set(stored) == {"all background", "converted classifier", "FCN-32s", "FCN-16s", "FCN-8s"}, stored
    assert readme_table() == stored
