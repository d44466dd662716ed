"""The binary genotype format (HDF5): round trips, partial reads, refusals."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lmmcore.errors import LMMInputError
from lmmcore.genostore import is_binary_genotypes, read_genotypes_h5, write_genotypes_h5
from lmmcore.genotypes import Genotypes, read_dosages, read_genoprobs

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def probs() -> Genotypes:
    return read_genoprobs(ASSETS / "genoprobs.csv", ASSETS / "map.csv")


def test_round_trip_of_probabilities_is_exact(probs, tmp_path):
    out = write_genotypes_h5(probs, tmp_path / "g.h5")
    back = read_genotypes_h5(out)
    assert back.ids == probs.ids and back.markers == probs.markers
    assert back.chromosome == probs.chromosome and back.genotype_names == probs.genotype_names
    np.testing.assert_array_equal(back.position, probs.position)
    np.testing.assert_array_equal(back.probs, probs.probs)


def test_one_chromosome_is_the_slice_of_the_whole(probs, tmp_path):
    out = write_genotypes_h5(probs, tmp_path / "g.h5")
    chrom = probs.chromosomes[1]
    part = read_genotypes_h5(out, chromosomes=[chrom])
    cols = np.flatnonzero(np.asarray(probs.chromosome) == chrom)
    assert part.markers == tuple(probs.markers[k] for k in cols)
    np.testing.assert_array_equal(part.probs, probs.probs[:, cols])


def test_float32_storage_keeps_seven_digits(probs, tmp_path):
    back = read_genotypes_h5(write_genotypes_h5(probs, tmp_path / "g.h5", dtype="float32"))
    np.testing.assert_allclose(back.probs, probs.probs, rtol=0, atol=1e-7)


def test_round_trip_of_dosages(tmp_path):
    dos = read_dosages(ASSETS / "genotypes.csv", ASSETS / "map.csv")
    back = read_genotypes_h5(write_genotypes_h5(dos, tmp_path / "d.hdf5"))
    assert back.kind == "dosage" and back.markers == dos.markers
    np.testing.assert_array_equal(back.dosage, dos.dosage)


def test_chromosomes_with_their_own_genotype_sets_read_as_a_union_with_zeros(tmp_path):
    # An F2 with autosome 1 (AA, AB, BB) and X (AA, AB, BA, BB, AY, BY), as R/qtl2 stores them.
    rng = np.random.default_rng(1)
    auto = rng.dirichlet(np.ones(3), size=(4, 2))
    xchr = rng.dirichlet(np.ones(6), size=(4, 3))
    union = ("AA", "AB", "BB", "BA", "AY", "BY")
    probs = np.zeros((4, 5, 6))
    probs[:, :2, :3] = auto
    probs[:, 2:, [0, 1, 3, 2, 4, 5]] = xchr
    by_chr = {"1": ("AA", "AB", "BB"), "X": ("AA", "AB", "BA", "BB", "AY", "BY")}
    extra = {"genotypes_by_chr": by_chr} if "genotypes_by_chr" in Genotypes.__dataclass_fields__ else {}
    g = Genotypes(ids=list("abcd"), markers=["m1", "m2", "x1", "x2", "x3"], chromosome=["1", "1", "X", "X", "X"],
                  position=[0.0, 5.0, 1.0, 2.0, 3.0], probs=probs, genotype_names=union, **extra)
    out = write_genotypes_h5(g, tmp_path / "g.h5")
    import h5py

    with h5py.File(out) as f:  # each chromosome holds only its own genotypes
        assert f["chr/1/probs"].shape == (4, 2, 3 if extra else 6)
        assert f["chr/X/probs"].shape == (4, 3, 6)
    back = read_genotypes_h5(out)
    assert set(back.genotype_names) == set(union)
    order = [back.genotype_names.index(name) for name in union]
    np.testing.assert_array_equal(back.probs[:, :, order], probs)


def test_refuses_to_overwrite_without_force_and_follows_the_umask(probs, tmp_path):
    target = tmp_path / "g.h5"
    target.write_text("keep me")
    with pytest.raises(LMMInputError, match="already exists"):
        write_genotypes_h5(probs, target)
    assert target.read_text() == "keep me"
    old = os.umask(0o022)
    try:
        write_genotypes_h5(probs, target, force=True)
    finally:
        os.umask(old)
    assert (target.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["g.h5"]  # no temporary file left


def test_clear_errors_for_files_that_are_not_ours(probs, tmp_path):
    text = tmp_path / "g.h5"
    text.write_text("id,m1:AA\n")
    with pytest.raises(LMMInputError, match="not an HDF5 file"):
        read_genotypes_h5(text)
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(LMMInputError, match="not an lmmcore-genotypes file"):
        read_genotypes_h5(other)
    with pytest.raises(LMMInputError, match="no chromosome 99"):
        read_genotypes_h5(write_genotypes_h5(probs, tmp_path / "ok.h5"), chromosomes=["99"])
    with pytest.raises(LMMInputError, match="does not exist"):
        read_genotypes_h5(tmp_path / "missing.h5")
    assert is_binary_genotypes("a/B.H5") and not is_binary_genotypes("b.csv")
