"""A corpus of malformed crosses, each read with ``lmmcore.read_cross``.

CASES (below) builds each bad cross from the hand-written F2 of
tests/data/cross/tiny_f2 (a folder, or a zip of it), corrupting one thing,
and states what must happen:

* ``"error"`` -- an :class:`~lmmcore.errors.LMMInputError` (never another
  exception: no traceback reaches the user) whose message is one sentence
  (one line, ending in a full stop) that names the file (``names``), holds
  the case's words, and says what to do (``todo``). Nothing is written.
* ``"warn"`` -- R/qtl2 reads the cross with a warning: the cross is read and
  one message sent to ``report`` holds the file's name and the words.

Each case also runs through ``lmmcore genoprob --cross`` (exit 2 and one ``lmmcore: error:``
sentence, or exit 0 and the warning), except those that need a size cap or an upload.

Where R/qtl2 only warns this reader only reports (genotype codes outside the
``genotypes`` map, markers missing from the map, IDs that partly disagree);
see :mod:`lmmcore.cross_files` for the few places where it is stricter.
Safety cases check that nothing outside the cross is read: paths with
``..``, absolute paths, links out of the folder, zip entries with ``..``,
zip bombs (by the sizes the zip declares, and by a forged header).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml

from lmmcore import read_cross
from lmmcore.cli import main
from lmmcore.errors import LMMInputError

TINY_F2 = Path(__file__).parent / "data" / "cross" / "tiny_f2"
CONTROL = "tiny_f2.yaml"


# --------------------------------------------------------------------------- builders


def folder(tmp: Path) -> Path:
    dest = tmp / "cross"
    if not dest.exists():
        shutil.copytree(TINY_F2, dest)
    return dest


def control(tmp: Path, **changes) -> Path:
    """The tiny F2's control file with fields changed (``None`` removes; ``__`` stands for ``.``)."""
    path = folder(tmp) / CONTROL
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def put(tmp: Path, name: str, content: str | bytes, **changes) -> Path:
    """Write one file of the tiny F2 (replacing it), then change the control file."""
    path = folder(tmp) / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return control(tmp, **changes) if changes or name != CONTROL else path


def edit(tmp: Path, name: str, old: str, new: str, **changes) -> Path:
    path = folder(tmp) / name
    text = path.read_text()
    assert old in text, (name, old)
    return put(tmp, name, text.replace(old, new, 1), **changes)


def zipped(tmp: Path, extra: dict[str, bytes] | None = None, skip=(), name="cross.zip") -> Path:
    src = folder(tmp)
    dest = tmp / name
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(src.iterdir()):
            if f.name not in skip:
                z.write(f, f.name)
        for entry, data in (extra or {}).items():
            z.writestr(zipfile.ZipInfo(entry), data)
    return dest


def forged_zip(tmp: Path) -> Path:
    """A zip whose geno.csv declares 100 bytes but inflates to 20 MB (a lying header)."""
    big = b"id,m\n" + b"i1,AA\n" * 3_500_000
    dest = zipped(tmp, skip=("geno.csv",))
    with zipfile.ZipFile(dest, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("geno.csv", big)
    raw = bytearray(dest.read_bytes())
    true_size = struct.pack("<I", len(big))
    # patch the uncompressed size of geno.csv in its local header (offset 22) and central directory entry (24)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = raw.find(signature)
        while start >= 0:
            if raw[start + offset: start + offset + 4] == true_size:
                raw[start + offset: start + offset + 4] = struct.pack("<I", 100)
            start = raw.find(signature, start + 4)
    dest.write_bytes(bytes(raw))
    return dest


def linked_out(tmp: Path) -> Path:
    secret = tmp / "secret.csv"
    secret.write_text("id,m2a\ni1,AA\n")
    link = folder(tmp) / "geno_link.csv"
    os.symlink(secret, link)
    return control(tmp, geno="geno_link.csv")


def outside_file(tmp: Path, name: str) -> Path:
    (tmp / "outside.csv").write_text((TINY_F2 / "geno.csv").read_text())
    return control(tmp, geno=name)


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """One malformed cross and what must happen.

    Attributes
    ----------
    name : str
    build : callable
        ``build(tmp)`` writes the cross into ``tmp`` and returns what
        ``read_cross`` is given (a path; bytes for uploads).
    outcome : {"error", "warn"}
    names : str
        The file the message must name.
    words : tuple of str
        What else the message must say.
    todo : str
        The instruction an error must give.
    kwargs : dict
        Keywords for ``read_cross`` (e.g. a small ``max_bytes``).
    """

    name: str
    build: Callable[[Path], object]
    outcome: str
    names: str
    words: tuple[str, ...]
    todo: str = ""
    kwargs: tuple = ()


def E(name, build, names, *words, **kw):
    """An error case; the last of ``words`` is the instruction."""
    return Case(name, build, "error", names, tuple(words[:-1]), todo=words[-1], kwargs=tuple(kw.items()))


def W(name, build, names, *words, **kw):
    return Case(name, build, "warn", names, tuple(words), kwargs=tuple(kw.items()))


GENO_X_ONLY = "id,mXa,mXb\ni1,AA,AA\ni2,BB,BB\n"

CASES: list[Case] = [
    # ---- where the cross is
    E("path_missing", lambda t: t / "nope.zip", "nope.zip", "does not exist", "check the path"),
    E("path_is_a_folder", lambda t: folder(t), "cross", "is a folder", "give the cross's zip file"),
    E("not_zip_or_control", lambda t: put(t, "x.txt", "hello") and folder(t) / "x.txt", "x.txt",
      "neither a zip nor a control file", "give a cross"),
    E("unreadable_zip", lambda t: (t / "bad.zip").write_bytes(b"PK\x03\x04 not really a zip") and t / "bad.zip",
      "bad.zip", "not a readable zip file", "give the cross as a .zip"),
    E("truncated_zip", lambda t: (t / "cut.zip").write_bytes(zipped(t).read_bytes()[:300]) and t / "cut.zip",
      "cut.zip", "not a readable zip file", "give the cross as a .zip"),
    E("upload_not_a_zip", lambda t: b"crosstype: f2\n", "the uploaded cross", "not a readable zip file",
      "give the cross as a .zip"),
    E("zip_without_control_file", lambda t: zipped(t, skip=(CONTROL,)), "cross.zip", "no control file",
      "add the R/qtl2 control file"),
    E("zip_with_two_control_files", lambda t: zipped(t, extra={"other.yaml": b"crosstype: f2\n"}), "cross.zip",
      "2 control files", "remove the others"),
    W("zip_with_yaml_and_json", lambda t: zipped(t, extra={"c.json": b"{}"}), "cross.zip",
      "both YAML and JSON", CONTROL),
    # ---- the control file
    E("bad_yaml", lambda t: put(t, CONTROL, "crosstype: f2\ngeno: [geno.csv\ngmap: gmap.csv\n"), CONTROL,
      "not valid YAML", "line", "correct the control file"),
    E("bad_json", lambda t: put(t, "c.json", '{"crosstype": "f2", "geno": }') and folder(t) / "c.json", "c.json",
      "not valid JSON", "line 1", "correct the control file"),
    E("control_not_a_mapping", lambda t: put(t, CONTROL, "- geno.csv\n- gmap.csv\n"), CONTROL,
      "does not hold R/qtl2's control fields", "give the control file"),
    E("control_not_utf8", lambda t: put(t, CONTROL, "crosstype: f2\ngeno: g\xe9.csv\n".encode("latin-1")), CONTROL,
      "not UTF-8", "save the control file as UTF-8"),
    E("no_crosstype", lambda t: control(t, crosstype=None), CONTROL, "no crosstype", "add one"),
    E("unknown_crosstype", lambda t: control(t, crosstype="f3"), CONTROL, "'f3'", "not supported",
      "use one of bc, f2"),
    E("no_geno", lambda t: control(t, geno=None), CONTROL, "no genotype file", "add 'geno"),
    E("no_map", lambda t: control(t, gmap=None, pmap=None), CONTROL, "no marker map", "add 'gmap"),
    E("file_name_not_text", lambda t: control(t, geno={"a": 1}), CONTROL, "geno", "must be a file name",
      "correct the control file"),
    E("genotype_code_zero", lambda t: control(t, genotypes={"AA": 0, "AB": 2, "BB": 3}), CONTROL, "'AA'",
      "used for missing values", "correct the genotypes map"),
    E("bad_sep", lambda t: control(t, sep=";;"), CONTROL, "sep", "one character"),
    # ---- files the control file names
    E("missing_file", lambda t: control(t, pheno="pheno_v2.csv"), CONTROL, "'pheno_v2.csv'", "does not exist",
      "add the file or correct the name"),
    E("missing_file_in_zip", lambda t: zipped(t, skip=("pmap.csv",)), "cross.zip", "'pmap.csv'", "no such file",
      "add the file or correct the name"),
    E("parent_path", lambda t: outside_file(t, "../outside.csv"), CONTROL, "'../outside.csv'",
      "outside the cross's folder", "without '..'"),
    E("absolute_path", lambda t: outside_file(t, str(t / "outside.csv")), CONTROL, "outside.csv",
      "outside the cross's folder", "relative to it"),
    E("parent_path_in_zip", lambda t: (control(t, geno="../geno.csv"), zipped(t))[1], "cross.zip",
      "'../geno.csv'", "outside the cross's folder", "without '..'"),
    E("web_address", lambda t: control(t, geno="https://example.org/geno.csv"), CONTROL, "web address",
      "never downloaded", "put the file beside the control file"),
    E("link_out_of_the_folder", linked_out, CONTROL, "'geno_link.csv'", "leads outside", "copy the file there"),
    E("zip_entry_with_parent", lambda t: zipped(t, extra={"../evil.csv": b"x"}), "cross.zip", "'../evil.csv'",
      "leaves the zip's folder", "zip the cross's files again"),
    E("zip_entry_absolute", lambda t: zipped(t, extra={"/etc/evil.csv": b"x"}), "cross.zip", "'/etc/evil.csv'",
      "leaves the zip's folder", "zip the cross's files again"),
    E("zip_bomb_declared", lambda t: zipped(t, extra={"pad.bin": b"\0" * 300_000}), "cross.zip",
      "declares", "nothing was extracted", "raise the limit", max_bytes=200_000),
    E("zip_bomb_forged_header", forged_zip, "geno.csv", "could not be decompressed", "zip the cross's files again"),
    E("folder_over_the_cap", lambda t: put(t, "pheno.csv", "id,w\n" + "i1,1\n" * 60_000), "pheno.csv",
      "size limit", "raise the limit", max_bytes=200_000),
    # ---- file contents
    E("ragged_row", lambda t: edit(t, "geno.csv", "i3,AB,NA,AA", "i3,AB,NA,AA,AA"), "geno.csv", "line 6",
      "9 fields", "header has 8", "same number of fields"),
    E("nrow_comment_wrong", lambda t: edit(t, "geno.csv", "# nrow 6", "# nrow 7"), "geno.csv", "6 rows",
      "# nrow 7", "correct the comment or the file"),
    E("empty_file", lambda t: put(t, "pmap.csv", ""), "pmap.csv", "empty", "header row"),
    E("binary_file", lambda t: put(t, "geno.csv", gzip.compress(b"id,m\n" * 50, mtime=0)), "geno.csv",
      "not a text file", "save it as CSV"),
    E("utf16_file", lambda t: put(t, "pheno.csv", (TINY_F2 / "pheno.csv").read_text().encode("utf-16")),
      "pheno.csv", "UTF-16", "save it as CSV UTF-8"),
    E("one_column_file", lambda t: put(t, "pheno.csv", "id;weight\ni1;3\n"), "pheno.csv", "1 column",
      "delimited by ','"),
    E("duplicate_id", lambda t: edit(t, "geno.csv", "i5,", "i4,", ), "geno.csv", "'i4'", "more than once",
      "rename or remove"),
    E("duplicate_id_in_transposed_pheno", lambda t: put(t, "pheno.csv", "id,i1,i1\nweight,1,2\n", pheno_transposed=True),
      "pheno.csv", "'i1'", "more than once", "rename or remove"),
    E("duplicate_marker_in_map", lambda t: edit(t, "gmap.csv", "m2a,2,10", "m2b,2,10"), "gmap.csv", "'m2b'",
      "more than once", "remove the repeated rows"),
    E("map_without_pos", lambda t: put(t, "pmap.csv", "marker,chr\nm2a,2\n"), "pmap.csv", "2 columns",
      "chr and pos"),
    E("no_marker_in_common", lambda t: put(t, "gmap.csv", "marker,chr,pos\nq1,1,0\nq2,1,5\n", pmap=None),
      "geno.csv", "No marker", "must match"),
    E("geno_without_rows", lambda t: put(t, "geno.csv", "id,m2a,m2b\n"), "geno.csv", "no rows of genotypes",
      "give one row per individual"),
    E("ids_disagree", lambda t: put(t, "pheno.csv", "id,w\nmouse1,3\nmouse2,4\n"), "geno.csv", "'mouse1'", "'i1'",
      "the IDs must be the same"),
    # ---- sex and cross information
    E("sex_column_absent", lambda t: control(t, sex={"covar": "Sex", "f": "female", "m": "male"}), CONTROL,
      "'Sex'", "does not have", "correct the column name"),
    E("sex_code_unknown", lambda t: edit(t, "covar.csv", "i3,f,", "i3,x,"), "covar.csv", "'x'", "'i3'",
      "not among the control file's sex codes", "add the codes"),
    E("sex_map_reversed", lambda t: control(t, sex={"covar": "sex", "female": "f", "male": "m"}), "covar.csv",
      "'f'", "looks reversed", "add the codes"),
    E("cross_info_map_reversed", lambda t: control(t, cross_info={"covar": "dir", 0: "(AxB)x(AxB)"}), CONTROL,
      "'0'", "must be integers", "(AxB)x(AxB): 0"),
    E("sex_missing", lambda t: edit(t, "covar.csv", "i3,f,", "i3,NA,"), "covar.csv", "'i3'", "without sex",
      "fill it in"),
    E("sex_meaning_unknown", lambda t: control(t, sex={"covar": "sex", "f": "female", "m": "unknown"}), CONTROL,
      "'m'", "'unknown'", "must be female or male"),
    E("cross_info_code_unknown", lambda t: edit(t, "covar.csv", "i6,m,(BxA)x(BxA)", "i6,m,BxA"), "covar.csv", "'BxA'",
      "'i6'", "add them to the cross_info map"),
    E("cross_info_missing_values", lambda t: edit(t, "covar.csv", "i6,m,(BxA)x(BxA)", "i6,m,NA"), "covar.csv",
      "'i6'", "missing", "fill it in"),
    E("f2_x_without_cross_info", lambda t: control(t, cross_info=None), CONTROL, "f2", "cross direction",
      "add 'cross_info'"),
    E("cross_info_not_integer", lambda t: (edit(t, "covar.csv", "i2,m,(AxB)x(AxB),12", "i2,m,(AxB)x(AxB),1.5"),
                                           control(t, cross_info={"covar": "age"}))[1],
      "covar.csv", "'1.5'", "'i2'", "not an integer", "give integers"),
    E("cross_info_direction_invalid", lambda t: control(t, cross_info={"covar": "age"}), CONTROL, "f2",
      "0 or 1", "'i1'", "correct those values"),
    E("do_without_founders", lambda t: control(t, crosstype="do", cross_info={"covar": "age"}), CONTROL,
      "do cross needs the founders' genotypes", "add 'founder_geno"),
    E("do_without_generations", lambda t: (put(t, "fg.csv", "f,m2a\n" + "".join(f"{c},AA\n" for c in "ABCDEFGH")),
                                           control(t, crosstype="do", founder_geno="fg.csv", cross_info=None))[1],
      CONTROL, "do cross needs the number of generations", "add 'cross_info"),
    E("do_wrong_founder_count", lambda t: (put(t, "fg.csv", "f,m2a\nA,AA\nB,BB\n"),
                                           control(t, crosstype="do", founder_geno="fg.csv",
                                                   cross_info={"covar": "age"}))[1],
      "fg.csv", "2 founders", "has 8", "one row per founder"),
    E("funnel_not_a_permutation", lambda t: (put(t, "fg.csv", "f,m2a\nA,AA\nB,BB\nC,AA\nD,BB\n"),
                                             put(t, "ci.csv", "id,a,b,c,d\n" + "".join(
                                                 f"i{i},1,2,{3 if i != 4 else 2},4\n" for i in range(1, 7))),
                                             control(t, crosstype="risib4", founder_geno="fg.csv",
                                                     cross_info={"file": "ci.csv"}))[2],
      CONTROL, "permutation of 1..4", "'i4'", "correct those rows"),
    # ---- recoverable, as in R/qtl2 (warnings there)
    W("codes_not_in_genotypes", lambda t: edit(t, "geno.csv", "i2,BB,BB", "i2,Bb,BB"), "geno.csv",
      "1 genotype ", "'Bb'", "read as missing"),
    W("markers_missing_from_the_map", lambda t: edit(t, "gmap.csv", "m2b,2,40\n", ""), "gmap.csv",
      "'m2b'", "not in the genetic map", "left out"),
    W("markers_missing_from_the_genotypes", lambda t: edit(t, "gmap.csv", "m2b,2,40\n", "m2b,2,40\nm2z,2,45\n"),
      "geno.csv", "'m2z'", "not in the genotypes", "left out"),
    W("ids_partly_disagree", lambda t: edit(t, "pheno.csv", "i6,", "i9,"), "pheno.csv", "'i9'", "no genotypes"),
    W("x_chr_not_in_genotypes", lambda t: control(t, x_chr="Z"), CONTROL, "'Z'", "no such chromosome"),
    W("text_phenotype", lambda t: edit(t, "pheno.csv", "i5,12,", "i5,tall,"), "pheno.csv", "'tall'", "'i5'",
      "not numbers"),
    W("individual_without_sex", lambda t: edit(t, "covar.csv", "i4,m,(BxA)x(BxA),10\n", ""), "'i4'",
      "without sex or cross information", "left out"),
    W("no_sex_with_x", lambda t: control(t, sex=None), CONTROL, "no sex", "taken as female"),
    W("unused_field", lambda t: control(t, genotype={"AA": 1}), CONTROL, "'genotype'", "does not use"),
    W("duplicate_pheno_column", lambda t: edit(t, "pheno.csv", "id,weight,length", "id,weight,weight"),
      "pheno.csv", "'weight'", "more than once"),
]


# --------------------------------------------------------------------------- the tests


def _snapshot(tmp: Path) -> dict:
    return {p: p.stat().st_size for p in tmp.rglob("*") if not p.is_symlink()}


def test_corpus_is_large():
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.outcome for c in CASES} == {"error", "warn"}


def test_the_tiny_cross_reads_cleanly(tmp_path):
    messages: list[str] = []
    read_cross(control(tmp_path), report=messages.append)
    read_cross(zipped(tmp_path), report=messages.append)
    assert messages == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_cross(case, tmp_path):
    source = case.build(tmp_path)
    before = _snapshot(tmp_path)
    messages: list[str] = []
    if case.outcome == "error":
        with pytest.raises(LMMInputError) as info:
            read_cross(source, report=messages.append, **dict(case.kwargs))
        message = str(info.value)
        assert "\n" not in message and message.endswith("."), message
        assert case.todo in message, f"{case.todo!r} not in: {message}"
    else:
        read_cross(source, report=messages.append, **dict(case.kwargs))
        matching = [m for m in messages if all(w in m for w in case.words)]
        assert matching, messages
        message = matching[0]
    for word in (case.names, *case.words):
        assert word in message, f"{word!r} not in: {message}"
    assert _snapshot(tmp_path) == before  # nothing written


CLI_CASES = [c for c in CASES if not c.kwargs and c.name != "upload_not_a_zip"]  # no --max-bytes; no upload


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_bad_cross_on_the_command_line(case, tmp_path, capsys):
    """``lmmcore genoprob --cross``: an error exits 2 with one 'lmmcore: error:' sentence naming the file and
    the case's words, no traceback, nothing written; a warning case runs and prints its warning."""
    source = case.build(tmp_path)
    before = _snapshot(tmp_path)
    out = tmp_path / "probs.csv"
    try:
        code = main(["genoprob", "--cross", str(source), "--out", str(out), "--quiet"])
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if case.outcome == "error":
        errors = [line for line in err.splitlines() if line.startswith("lmmcore: error:")]
        assert code == 2 and len(errors) == 1, err
        assert all(word in errors[0] for word in (case.names, *case.words)), errors[0]
        assert _snapshot(tmp_path) == before  # nothing written
    else:
        warnings = [line for line in err.splitlines() if line.startswith("lmmcore: warning:")]
        assert code == 0 and out.exists(), err
        assert any(all(word in line for word in case.words) for line in warnings), err


def test_unsorted_map_is_sorted_as_r_qtl2_does(tmp_path):
    """R/qtl2 sorts the markers by position (no warning); the genotypes follow."""
    gmap = "marker,chr,pos\nmXb,X,25\nm10c,10,20.5\nm2b,2,40\nm10b,10,20.5\nmXa,X,5\nm10a,10,3.0\nm2a,2,10\n"
    cross = read_cross(put(tmp_path, "gmap.csv", gmap), report=[].append)
    assert cross.markers == ("m2a", "m2b", "m10a", "m10c", "m10b", "mXa", "mXb")  # the tie keeps file order
    np.testing.assert_array_equal(cross.geno["10"][:, 1:], [[0, 2], [2, 3], [3, 0], [1, 1], [2, 2], [1, 3]])


def test_the_forged_zip_really_lies(tmp_path):
    """The zip bomb case is a real one: the header says 100 bytes, the data inflate to ~20 MB."""
    path = forged_zip(tmp_path)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("geno.csv")
        assert info.file_size == 100
        raw = path.read_bytes()[info.header_offset:]
        name_len, extra_len = struct.unpack("<HH", raw[26:30])
        start = 30 + name_len + extra_len
        inflated = zlib.decompressobj(-15).decompress(raw[start: start + info.compress_size])
        assert len(inflated) > 20_000_000


def test_a_lone_carriage_return_in_a_header_is_an_input_error(tmp_path):
    """Regression: Python's csv module raised its own error on a CR inside the header line."""
    source = edit(tmp_path, "pheno.csv", "id,weight", "id,we\right")
    with pytest.raises(LMMInputError, match="pheno.csv: the header row could not be read"):
        read_cross(source, report=[].append)


@pytest.mark.parametrize("seed", range(3))
def test_mangled_crosses_give_input_errors_only(seed, tmp_path):
    """Lines deleted, repeated, swapped or cut and cells replaced at random: read, or one-sentence error."""
    rng = np.random.default_rng(seed)
    originals = {f.name: f.read_text() for f in TINY_F2.iterdir()}
    replacements = ["", "NA", "X", "zz", "1.5", "-3", "i1", "m2a", "10", "AA", "f", "~", "[", '"', "\r"]
    for _ in range(20):
        files = dict(originals)
        for _ in range(int(rng.integers(1, 4))):
            name = str(rng.choice(sorted(files)))
            lines = files[name].split("\n")
            i = int(rng.integers(len(lines)))
            op = rng.integers(5)
            if op == 0:
                del lines[i]
            elif op == 1:
                lines.insert(i, lines[i])
            elif op == 2:
                j = int(rng.integers(len(lines)))
                lines[i], lines[j] = lines[j], lines[i]
            elif op == 3:
                cells = lines[i].split(",")
                cells[int(rng.integers(len(cells)))] = str(rng.choice(replacements))
                lines[i] = ",".join(cells)
            else:
                lines = lines[:i]
            files[name] = "\n".join(lines)
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as z:
            for name, text in files.items():
                z.writestr(name, text)
        try:
            read_cross(data.getvalue(), name="mangled.zip", report=[].append)
        except LMMInputError as exc:
            assert "\n" not in str(exc) and str(exc).endswith("."), str(exc)
