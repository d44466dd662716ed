"""``--phenotypes`` with a misspelt name and ``--strict-ids``, in every subcommand that takes them (issue 14).

The one check of a phenotype selection is :func:`lmmcore.selection.check_names`
(used by ``fit``, ``scan``, ``effects``, ``fit1`` and the engine's
``fit_phenotypes``, ``prepare_pattern``, ``scan``, ``scan1coef``, ``fit1``);
``--strict-ids`` is :func:`lmmcore.selection.check_same_ids`. The data are a
small simulated cross written as CSV here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcore.cli import main
from lmmcore.errors import LMMInputError
from lmmcore.genotypes import read_genoprobs
from lmmcore.kinship import compute_kinship
from lmmcore.selection import check_names, check_same_ids, unknown_name_message
from lmmcore.simulate import genotype_probabilities, simulate_genotype_dosages

N, M = 40, 12
COMMANDS = ("fit", "scan", "effects", "fit1")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("selection")
    g = simulate_genotype_dosages(N, M, n_chr=2, seed=3)
    D = g.dosage
    ids, markers = list(g.ids), list(g.markers)
    pd.DataFrame({"marker": markers, "chr": list(g.chromosome), "pos": g.position}).to_csv(tmp / "map.csv",
                                                                                       index=False)
    P = genotype_probabilities(D.astype(int), error=0.02)
    cols = [f"{mk}:{gn}" for mk in markers for gn in ("AA", "AB", "BB")]
    pd.DataFrame(P.reshape(N, -1), index=pd.Index(ids, name="id"), columns=cols).to_csv(tmp / "probs.csv")
    rng = np.random.default_rng(4)
    pheno = pd.DataFrame({"liver": D[:, 3] + rng.normal(size=N), "spleen": rng.normal(size=N)},
                         index=pd.Index(ids, name="id"))
    pheno.to_csv(tmp / "pheno.csv")
    # two IDs without genotypes (and kinship), and the last two genotyped individuals without phenotypes
    extra = pd.DataFrame({"liver": [0.1, 0.2], "spleen": [0.3, 0.4]}, index=pd.Index(["ghost1", "ghost2"], name="id"))
    pd.concat([pheno.iloc[:-2], extra]).to_csv(tmp / "pheno_mismatch.csv")
    covar = pd.DataFrame({"sex": rng.integers(0, 2, N).astype(float)}, index=pd.Index(ids, name="id"))
    covar.to_csv(tmp / "covar.csv")
    covar.iloc[1:].to_csv(tmp / "covar_short.csv")
    geno = read_genoprobs(tmp / "probs.csv", tmp / "map.csv")
    K = compute_kinship(geno).matrix
    pd.DataFrame(K, index=ids, columns=ids).to_csv(tmp / "kinship.csv")
    return tmp, ids


def _argv(command, files, pheno="pheno.csv", covar=None, phenotypes="liver", extra=()):
    tmp, _ = files
    out = tmp / f"out_{command}_{abs(hash((pheno, covar, phenotypes, tuple(extra))))}.csv"
    if command == "fit":
        argv = ["fit", "--kinship", tmp / "kinship.csv"]
    else:
        argv = [command, "--genoprobs", tmp / "probs.csv", "--map", tmp / "map.csv", "--kinship", "loco"]
    argv += ["--pheno", tmp / pheno, "--phenotypes", phenotypes, "--out", out, "--force"]
    if covar:
        argv += ["--covar", tmp / covar]
    if command == "effects":
        argv += ["--chr", "1"]
    if command == "fit1":
        argv += ["--marker", "snp000004"]
    return [str(a) for a in argv + list(extra)]


def run(capsys, argv):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    return code, err


def test_marker_name_used_by_fit1_exists(files):
    tmp, _ = files
    assert "snp000004" in read_genoprobs(tmp / "probs.csv", tmp / "map.csv").markers


# --------------------------------------------------------------------------- misspelt phenotypes
@pytest.mark.parametrize("command", COMMANDS)
def test_misspelt_phenotype_suggests_the_nearest_name(files, capsys, command):
    code, err = run(capsys, _argv(command, files, phenotypes="liverr"))
    assert code == 2, err
    assert "Traceback" not in err
    assert "'liverr'" in err and "pheno.csv" in err
    assert "did you mean 'liver'?" in err
    assert "The columns are: liver, spleen" in err


def test_misspelt_phenotype_in_a_list_of_several(files, capsys):
    for command in ("fit", "scan"):
        code, err = run(capsys, _argv(command, files, phenotypes="liver,spleeen"))
        assert code == 2, err
        assert "'spleeen'" in err and "did you mean 'spleen'?" in err


def test_unknown_name_message_cases():
    cols = ["liver", "spleen", "body_weight"]
    assert "did you mean 'liver'?" in unknown_name_message("Liver", cols)  # case only
    text = unknown_name_message("xyz", cols, "phenotype file 'p.csv'")
    assert "did you mean" not in text
    assert text == "no phenotype column named 'xyz' in phenotype file 'p.csv'; the columns are: liver, spleen, body_weight"
    many = [f"trait{i}" for i in range(30)]
    assert unknown_name_message("zzz", many).endswith("trait19 ...")
    assert check_names(["liver"], cols) == ["liver"]
    with pytest.raises(LMMInputError, match="did you mean 'body_weight'"):
        check_names(["liver", "bodyweight"], cols)


def test_engine_entry_points_suggest_too(files):
    from lmmcore.effects import scan1coef
    from lmmcore.scan import scan

    tmp, _ = files
    geno = read_genoprobs(tmp / "probs.csv", tmp / "map.csv")
    pheno = pd.read_csv(tmp / "pheno.csv", index_col=0)
    with pytest.raises(LMMInputError, match="did you mean 'liver'"):
        scan(geno, pheno, select=["livr"], kinship="overall")
    with pytest.raises(LMMInputError, match="did you mean 'spleen'"):
        scan1coef(geno, pheno, chromosome="1", phenotype="Spleen")


# --------------------------------------------------------------------------- --strict-ids
@pytest.mark.parametrize("command", COMMANDS)
def test_strict_ids_makes_dropped_individuals_an_error(files, capsys, command):
    tmp, ids = files
    # without the flag: today's behaviour, the individuals are left out with a warning
    code, err = run(capsys, _argv(command, files, pheno="pheno_mismatch.csv"))
    assert code == 0, err
    assert "warning" in err and ("dropped" in err or "left out" in err)
    out = _argv(command, files, pheno="pheno_mismatch.csv")[_argv(command, files).index("--out") + 1]
    if command == "fit1":
        assert int(pd.read_csv(out)["n"].iloc[0]) == N - 2
    # with it: an error that names the files and the IDs
    code, err = run(capsys, _argv(command, files, pheno="pheno_mismatch.csv", extra=["--strict-ids"]))
    assert code == 2, err
    assert "Traceback" not in err
    assert "--strict-ids" in err and "pheno_mismatch.csv" in err
    assert "'ghost1'" in err and "'ghost2'" in err  # in the phenotypes only
    assert f"'{ids[-2]}'" in err  # genotyped (and in the kinship) without a phenotype row
    assert ("kinship.csv" if command == "fit" else "probs.csv") in err


@pytest.mark.parametrize("command", COMMANDS)
def test_strict_ids_names_the_covariate_file(files, capsys, command):
    tmp, ids = files
    code, err = run(capsys, _argv(command, files, covar="covar_short.csv", extra=["--strict-ids"]))
    assert code == 2, err
    assert "covar_short.csv" in err and f"'{ids[0]}'" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_strict_ids_passes_when_the_files_match(files, capsys, command):
    code, err = run(capsys, _argv(command, files, covar="covar.csv", extra=["--strict-ids"]))
    assert code == 0, err
    assert "dropped" not in err and "left out" not in err


def test_check_same_ids_lists_a_few_ids_per_pair():
    with pytest.raises(LMMInputError) as info:
        check_same_ids({"A": ["a", "b", "c", "d", "e"], "B": ["a"], "C": None})
    text = str(info.value)
    assert "4 individual(s) of the A are not in the B ('b', 'c', 'd' ...)" in text
    assert "'e'" not in text
    check_same_ids({"A": ["a", "b"], "B": ["b", "a"]})  # order does not matter
