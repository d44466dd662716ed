"""The teaching notebooks run top to bottom in a fresh kernel, each within two minutes.

Besides running, the notebooks check their own mathematics with ``assert`` cells (the engine
against dense linear algebra, SciPy's density and optimiser, simulations with known truth), so
a wrong number fails this test, not only an exception. The notebooks are kept in the repository
with their outputs cleared; ``test_outputs_are_cleared`` keeps it that way.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = ["01_lmm_algorithm.ipynb", "02_heritability_many_traits.ipynb", "03_genome_scan.ipynb",
            "04_genotype_probabilities.ipynb"]
#: Seconds each notebook may take, start of kernel to last cell.
TIME_LIMIT = 120


def test_every_notebook_is_collected():
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_cleared(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; save the notebook with outputs cleared"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path):
    nb = nbformat.read(path, as_version=4)
    # the notebooks find ../assets relative to their own folder
    client = NotebookClient(nb, timeout=TIME_LIMIT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"{path.name} took {elapsed:.0f} s; the limit is {TIME_LIMIT} s"
