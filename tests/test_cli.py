"""`lmmcore fit`: the output contract, no overwriting, and a clear exit-2 error for each bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import random_kinship, simulate_y
from dense import loglik
from lmmcore.cli import main

CONTRACT = ["phenotype", "method", "n", "p", "h2", "h2_se", "h2_ci_low", "h2_ci_high", "sigma2",
            "sigma2_g", "sigma2_e", "loglik", "lrt_h2_zero", "p_h2_zero", "boundary"]


@pytest.fixture
def files(tmp_path):
    """A small data set written as a user would: R-style CSVs with an empty first header."""
    n = 50
    ids = [f"ind{i}" for i in range(n)]
    K = random_kinship(n, 250, seed=41)
    rng = np.random.default_rng(42)
    sex = rng.choice(["f", "m"], n)
    X = np.column_stack([np.ones(n), sex == "m"]).astype(float)
    P = pd.DataFrame({"height": simulate_y(K, X, np.array([5.0, 1.0]), 0.5, 1.0, 43),
                      "weight": simulate_y(K, X, np.array([2.0, 0.0]), 0.2, 4.0, 44)}, index=ids)
    P.iloc[:3, 1] = np.nan
    paths = {"kinship": tmp_path / "K.csv", "pheno": tmp_path / "P.csv", "covar": tmp_path / "C.csv"}
    pd.DataFrame(K, index=ids, columns=ids).to_csv(paths["kinship"], index_label="")
    P.to_csv(paths["pheno"], index_label="", na_rep="NA")
    pd.DataFrame({"sex": sex}, index=ids).to_csv(paths["covar"], index_label="")
    return tmp_path, paths, K, P, X


def run(args, capsys):
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def test_fit_writes_the_contract_columns_and_correct_numbers(files, capsys):
    tmp, paths, K, P, X = files
    out = tmp / "results.csv"
    status, err = run(["fit", "--kinship", paths["kinship"], "--pheno", paths["pheno"], "--covar",
                       paths["covar"], "--out", out, "--method", "ml"], capsys)
    assert status == 0, err
    res = pd.read_csv(out)
    assert list(res.columns[: len(CONTRACT)]) == CONTRACT
    for col in ("beta_intercept", "beta_sex[m]", "se_intercept", "se_sex[m]"):
        assert col in res.columns
    assert list(res["phenotype"]) == ["height", "weight"] and set(res["method"]) == {"ml"}
    assert list(res["n"]) == [50, 47]
    # the reported optimum is the dense likelihood's value there
    keep = P["weight"].notna().to_numpy()
    row = res.iloc[1]
    assert row["loglik"] == pytest.approx(
        loglik(K[np.ix_(keep, keep)], P["weight"].to_numpy()[keep], X[keep], row["h2"], "ml"), abs=1e-7)


def test_profile_out_has_grid_rows_from_0_to_1(files, capsys):
    tmp, paths, K, P, X = files
    status, err = run(["fit", "--kinship", paths["kinship"], "--pheno", paths["pheno"], "--out", tmp / "r.csv",
                       "--phenotypes", "height", "--profile-out", tmp / "prof.csv", "--grid", "11"], capsys)
    assert status == 0, err
    prof = pd.read_csv(tmp / "prof.csv")
    assert list(prof.columns) == ["phenotype", "method", "h2", "loglik"]
    np.testing.assert_allclose(prof["h2"], np.linspace(0, 1, 11))
    dense = [loglik(K, P["height"].to_numpy(), np.ones((50, 1)), h, "reml") for h in np.linspace(0, 1, 11)]
    np.testing.assert_allclose(prof["loglik"], dense, atol=1e-8)


def test_existing_output_is_never_replaced_without_force(files, capsys):
    tmp, paths, *_ = files
    out = tmp / "results.csv"
    out.write_text("precious\n")
    args = ["fit", "--kinship", paths["kinship"], "--pheno", paths["pheno"], "--out", out]
    status, err = run(args, capsys)
    assert status == 2 and "already exists" in err and "--force" in err
    assert out.read_text() == "precious\n"
    status, err = run(args + ["--force"], capsys)
    assert status == 0 and out.read_text().startswith("phenotype,")
    assert not [p for p in os.listdir(tmp) if p.endswith(".tmp")]  # no temporary left behind


def _write(path, text):
    path.write_text(text)
    return path


def _bad_cases(tmp, paths, K, P):
    """(name, arguments replacing the defaults, expected words in the message)."""
    ids = list(P.index)
    kin = pd.DataFrame(K, index=ids, columns=ids)
    cases = []

    def kin_file(name, frame):
        p = tmp / name
        frame.to_csv(p, index_label="")
        return p

    cases.append(("missing file", {"--kinship": tmp / "nope.csv"}, ["nope.csv", "does not exist"]))
    cases.append(("empty file", {"--pheno": _write(tmp / "empty.csv", "")}, ["empty.csv", "empty"]))
    bin_path = tmp / "binary.csv"
    bin_path.write_bytes(b"\x00\x01\x02PK\x03\x04" * 50)
    cases.append(("binary file", {"--pheno": bin_path}, ["binary.csv", "not a text file"]))
    P_txt = P.copy().astype(object)
    P_txt.iloc[5, 0] = "tall"
    p = tmp / "text.csv"
    P_txt.to_csv(p, index_label="")
    cases.append(("non-numeric value", {"--pheno": p}, ["text.csv", "height", "ind5", "'tall'"]))
    cases.append(("kinship not square", {"--kinship": kin_file("rect.csv", kin.iloc[:, :-1])},
                  ["rect.csv", "square"]))
    asym = kin.copy()
    asym.iloc[0, 1] += 0.5
    cases.append(("kinship not symmetric", {"--kinship": kin_file("asym.csv", asym)},
                  ["asym.csv", "not symmetric"]))
    notpsd = kin.copy()
    notpsd.iloc[0, 1] = notpsd.iloc[1, 0] = 5.0
    cases.append(("kinship not PSD", {"--kinship": kin_file("notpsd.csv", notpsd)}, ["positive semidefinite"]))
    nan_k = kin.copy()
    nan_k.iloc[2, 2] = np.inf
    cases.append(("kinship not finite", {"--kinship": kin_file("inf.csv", nan_k)}, ["inf.csv", "infinite"]))
    other = kin.copy()
    other.index = other.columns = [f"x{i}" for i in range(len(ids))]
    cases.append(("no shared IDs", {"--kinship": kin_file("other.csv", other)}, ["no individual ID", "x0", "ind0"]))
    dup = P.copy()
    dup.index = ids[:-1] + [ids[0]]
    p = tmp / "dup.csv"
    dup.to_csv(p, index_label="")
    cases.append(("duplicate IDs", {"--pheno": p}, ["dup.csv", "'ind0'", "more than once"]))
    const = P.copy()
    const["height"] = 3.0
    p = tmp / "const.csv"
    const.to_csv(p, index_label="")
    cases.append(("constant phenotype", {"--pheno": p}, ["height", "constant"]))
    allna = P.copy()
    allna["weight"] = np.nan
    p = tmp / "allna.csv"
    allna.to_csv(p, index_label="", na_rep="NA")
    cases.append(("all-missing phenotype", {"--pheno": p}, ["weight", "all missing"]))
    few = P.iloc[:4]
    p = tmp / "few.csv"
    few.to_csv(p, index_label="")
    covs = pd.DataFrame(np.random.default_rng(0).normal(size=(len(ids), 5)), index=ids,
                        columns=[f"c{i}" for i in range(5)])
    c = tmp / "many_cov.csv"
    covs.to_csv(c, index_label="")
    cases.append(("more coefficients than individuals", {"--pheno": p, "--covar": c},
                  ["coefficients", "individuals"]))
    cases.append(("unwritable output", {"--out": tmp / "no_such_dir" / "r.csv"}, ["does not exist"]))
    cases.append(("unknown phenotype", {"--phenotypes": "heigth"}, ["heigth", "height"]))
    return cases


def test_every_bad_input_class_exits_2_with_a_clear_message(files, capsys):
    tmp, paths, K, P, X = files
    cases = _bad_cases(tmp, paths, K, P)
    assert len(cases) >= 15
    for name, override, words in cases:
        args = {"--kinship": paths["kinship"], "--pheno": paths["pheno"], "--out": tmp / f"out_{len(name)}.csv"}
        args.update(override)
        argv = ["fit"] + [str(x) for kv in args.items() for x in kv]
        status, err = run(argv, capsys)
        assert status == 2, f"{name}: status {status}, stderr: {err}"
        assert "Traceback" not in err
        assert "lmmcore: error:" in err, name
        for w in words:
            assert w in err, f"{name}: '{w}' not in: {err}"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--pheno", "p.csv"])
    assert exc.value.code == 2
    assert "--kinship" in capsys.readouterr().err


def test_console_script_runs_as_a_process(files):
    tmp, paths, *_ = files
    exe = os.path.join(os.path.dirname(sys.executable), "lmmcore")
    proc = subprocess.run([exe, "fit", "--kinship", str(paths["kinship"]), "--pheno", str(paths["pheno"]),
                           "--covar", str(paths["covar"]), "--out", str(tmp / "cli.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fitted 2 phenotype(s)" in proc.stderr
    bad = subprocess.run([exe, "fit", "--kinship", str(tmp / "missing.csv"), "--pheno", str(paths["pheno"]),
                          "--out", str(tmp / "x.csv")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "missing.csv" in bad.stderr


def test_semicolon_file_is_read_with_a_warning(files, capsys):
    tmp, paths, K, P, X = files
    p = tmp / "semi.csv"
    P.to_csv(p, sep=";", index_label="", na_rep="NA")
    status, err = run(["fit", "--kinship", paths["kinship"], "--pheno", p, "--out", tmp / "s.csv"], capsys)
    assert status == 0, err
    assert "semicolon" in err
    ref = pd.read_csv(tmp / "s.csv")
    status, _ = run(["fit", "--kinship", paths["kinship"], "--pheno", paths["pheno"], "--out", tmp / "c.csv"], capsys)
    np.testing.assert_allclose(ref["h2"], pd.read_csv(tmp / "c.csv")["h2"])


def test_formula_like_names_are_neutralised_in_the_output(files, capsys):
    tmp, paths, K, P, X = files
    p = tmp / "formula.csv"
    P.rename(columns={"height": "=HYPERLINK(1)"}).to_csv(p, index_label="", na_rep="NA")
    status, err = run(["fit", "--kinship", paths["kinship"], "--pheno", p, "--out", tmp / "f.csv"], capsys)
    assert status == 0, err
    assert "'=HYPERLINK(1)" in (tmp / "f.csv").read_text()


@pytest.mark.parametrize("quiet", [False, True])
def test_messages_reach_stderr_in_order_through_the_receiver(monkeypatch, capsys, quiet):
    """The CLI used to replace warnings.showwarning; now the engine's messages reach it through
    lmmcore.errors.reporting only: each message once, in order, also with --quiet (as before), and
    the warnings machinery is left as it was."""
    import warnings

    import lmmcore.cli as cli
    from lmmcore.cli_common import say
    from lmmcore.errors import report

    showwarning, filters = warnings.showwarning, list(warnings.filters)

    def command(args):
        assert warnings.showwarning is showwarning and warnings.filters == filters
        report("first")
        report("second")
        report("first")
        say(args, "done")
        return 0

    monkeypatch.setattr(cli, "cmd_simulate", command)
    assert cli.main(["simulate"] + (["--quiet"] if quiet else [])) == 0
    expected = "lmmcore: warning: first\nlmmcore: warning: second\n" + ("" if quiet else "lmmcore: done\n")
    assert capsys.readouterr().err == expected


def test_help_and_version_start_without_the_numerical_libraries():
    # start-up: the parser is built without numpy, pandas, scipy or importlib.metadata; --version
    # asks the installed package's metadata only when given
    code = ("import sys; from lmmcore.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'importlib.metadata') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "lmmcore.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"lmmcore {version('lmm-explorer')}"
