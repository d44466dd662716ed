"""What a quiet ``lmmcore scan`` process imports: nothing it does not use.

Each library that a command imports without using costs every run its
import time (tqdm about 20-30 ms of CPU with its lock and monitor thread,
PyYAML about 20 ms), which is what the whole-process benchmarks against
GEMMA and R/qtl2 measure. These tests run the commands in a fresh process
and look at ``sys.modules`` afterwards. The last one checks that the
program, and only the program, freezes its objects when it is done (the
interpreter's exit then skips their cycle collections).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmcore.cli_common import progress_bar
from lmmcore.io import write_kinship_file
from lmmcore.kinship import kinship_from_dosages
from lmmcore.simulate import simulate_genotype_dosages, write_plink

CROSS_DATA = Path(__file__).parent / "data" / "cross"


def _modules_after(argv: list[str], names: tuple[str, ...], cwd) -> list[str]:
    """Run ``lmmcore`` with ``argv`` in a fresh process; which of ``names`` it imported."""
    code = textwrap.dedent(f"""
        import sys
        from lmmcore.cli import main
        assert main({argv!r}) == 0
        print(sorted(m for m in {names!r} if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_progress_bar_is_none_when_quiet_or_not_on_a_terminal(monkeypatch):
    # quiet: no bar; stderr captured by pytest (not a terminal): no bar either, as tqdm's disable=None would do
    assert progress_bar(True, total=3) is None
    assert not sys.stderr.isatty()
    assert progress_bar(False, total=3) is None


def test_progress_bar_on_a_terminal_is_a_tqdm_bar(monkeypatch):
    leader, follower = os.openpty()
    with open(follower, "w") as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        bar = progress_bar(False, total=3, desc="scanning", unit="marker")
        from tqdm import tqdm

        assert isinstance(bar, tqdm) and bar.total == 3 and not bar.disable
        bar.update(3)
        bar.close()
    os.close(leader)


def test_quiet_plink_scan_imports_neither_tqdm_nor_yaml(tmp_path):
    g = simulate_genotype_dosages(30, 20, n_chr=2, seed=3)
    write_plink(tmp_path / "d", g.dosage, list(g.ids), list(g.chromosome), np.round(g.position * 1e6) + 1,
                list(g.markers))
    write_kinship_file(np.asarray(kinship_from_dosages(g.dosage)), g.ids, tmp_path / "K.csv")
    y = np.random.default_rng(4).normal(size=30)
    pd.DataFrame({"y": y}, index=pd.Index(list(g.ids), name="id")).to_csv(tmp_path / "P.csv")
    argv = ["scan", "--bed", "d", "--pheno", "P.csv", "--kinship", "K.csv", "--refit", "--out", "s.csv", "--quiet"]
    assert _modules_after(argv, ("tqdm", "yaml"), tmp_path) == []
    assert len(pd.read_csv(tmp_path / "s.csv")) == 20  # and the scan ran


@pytest.mark.parametrize("quiet", [True, False])
def test_cross_scan_with_a_json_control_file_imports_neither_tqdm_nor_yaml(tmp_path, quiet):
    # doex_x.zip's control file is JSON; without a terminal no bar shows, with or without --quiet
    argv = ["scan", "--cross", str(CROSS_DATA / "doex_x.zip"), "--alleles", "--kinship", "loco",
            "--error-prob", "0.002", "--out", "s.csv"] + (["--quiet"] if quiet else [])
    assert _modules_after(argv, ("tqdm", "yaml"), tmp_path) == []
    assert (tmp_path / "s.csv").stat().st_size > 0


def test_a_yaml_control_file_still_reads(tmp_path):
    # iron_subset.zip's control file is YAML: PyYAML is imported when it is needed
    argv = ["genoprob", "--cross", str(CROSS_DATA / "iron_subset.zip"), "--out", "p.csv", "--quiet"]
    assert _modules_after(argv, ("yaml",), tmp_path) == ["yaml"]
    assert (tmp_path / "p.csv").stat().st_size > 0


def test_a_fixed_h2_cross_scan_imports_neither_refit_nor_fit(tmp_path):
    # lmmcore.refit (with its Chebyshev nodes), lmmcore.fit (with lmmcore.inference) and lmmcore.shared_scan are
    # imported where they are used (--refit, `lmmcore fit`, patterns that share a decomposition), not by every scan
    argv = ["scan", "--cross", str(CROSS_DATA / "doex_x.zip"), "--alleles", "--kinship", "loco",
            "--error-prob", "0.002", "--out", "s.csv", "--quiet"]
    lazy = ("lmmcore.refit", "lmmcore.chebyshev", "lmmcore.fit", "lmmcore.inference", "lmmcore.shared_scan")
    assert _modules_after(argv, lazy, tmp_path) == []
    fixed = pd.read_csv(tmp_path / "s.csv")
    # --refit imports lmmcore.refit when its first task needs it, and its fixed-h2 columns are the same
    assert _modules_after(argv + ["--refit", "--force"], lazy[:2], tmp_path) == sorted(lazy[:2])
    refit = pd.read_csv(tmp_path / "s.csv")
    assert refit["h2_reml"].notna().any()
    pd.testing.assert_frame_equal(refit[fixed.columns], fixed)


def test_lmmcore_scan_still_exports_the_refit_settings():
    import lmmcore.refit as refit
    import lmmcore.scan as scan_module

    names = [n for n in scan_module.__all__ if n.startswith("REFIT_")]
    assert len(names) == 5 and all(n in dir(scan_module) for n in names)
    assert all(getattr(scan_module, n) is getattr(refit, n) for n in names)
    with pytest.raises(AttributeError, match="no attribute 'REFIT_NOTHING'"):
        scan_module.REFIT_NOTHING


def test_the_program_freezes_its_objects_when_done_and_a_call_with_argv_does_not(tmp_path):
    import gc

    from lmmcore.cli import main

    argv = ["genoprob", "--cross", str(CROSS_DATA / "iron_subset.zip"), "--out", "p.csv", "--quiet"]
    # as the console script runs it: main() reads sys.argv and the process ends after it
    code = (f"import gc, sys; from lmmcore.cli import main; sys.argv = ['lmmcore', *{argv!r}]; "
            "frozen = gc.get_freeze_count(); rc = main(); print(rc, frozen, gc.get_freeze_count())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rc, before, after = map(int, done.stdout.split())
    assert rc == 0 and before == 0 and after > 10_000
    program = (tmp_path / "p.csv").read_bytes()
    # called with argv (tests, other programs): the caller's objects stay collectable, and the file is the same
    frozen = gc.get_freeze_count()
    assert main([*argv[:4], str(tmp_path / "p2.csv"), "--quiet"]) == 0
    assert gc.get_freeze_count() == frozen
    assert (tmp_path / "p2.csv").read_bytes() == program
