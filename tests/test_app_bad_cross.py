"""The bad-cross corpus of tests/test_bad_cross.py uploaded to the dashboard (no browser).

Each error case that can be an upload (a zip: the corrupted folder zipped, or
the case's own zip) goes to :meth:`app.state.ExplorerState.receive_cross_upload`
of one session that holds the bundled example: the upload is refused with an
error notice that names the file at fault and says the data loaded before are
still in use, and the data, the phenotype and the fits stay as they were. The
cases that cannot be uploads (a path that does not exist, a folder, a link out
of a folder, the size cap of a test's ``max_bytes``) are left to the reader's
and the command line's tests.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from browser_util import example_dir
from test_bad_cross import CASES, folder

from app.state import ExplorerState

#: Cases whose source is not an upload, or whose cause does not survive zipping (a symbolic link is zipped as
#: the file it points to).
NOT_UPLOADS = {"path_missing", "path_is_a_folder", "not_zip_or_control", "link_out_of_the_folder"}
#: Words of the folder's message that a zip says differently ("no such file" for "does not exist").
ZIP_WORDS = {"missing_file": ("'pheno_v2.csv'", "no such file")}

UPLOADS = [c for c in CASES if c.outcome == "error" and c.name not in NOT_UPLOADS and not c.kwargs]


def _upload(source, tmp: Path) -> tuple[str, bytes]:
    """The file a user would upload: the zip itself (under its name), or the cross's folder zipped."""
    if isinstance(source, bytes):
        return "upload.zip", source
    source = Path(source)
    if source.suffix == ".zip":
        return source.name, source.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder(tmp).iterdir()):
            if f.suffix not in (".yaml", ".json") or f.name == source.name:  # the case's control file only
                z.write(f, f.name)
    return "upload.zip", buffer.getvalue()


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> ExplorerState:
    s = ExplorerState()
    assert s.load_example(example_dir(tmp_path_factory.mktemp("assets")))
    return s


@pytest.mark.parametrize("case", UPLOADS, ids=lambda c: c.name)
def test_bad_cross_upload_keeps_the_data(case, session, tmp_path):
    before = (session.dataset, session.source_label, session.phenotype, session.fits())
    name, content = _upload(case.build(tmp_path), tmp_path)
    assert not session.receive_cross_upload(name, content)
    text = session.notice["text"]
    assert session.notice["level"] == "error", session.notice
    words = ZIP_WORDS.get(case.name, (case.names if case.name != "upload_not_a_zip" else "upload.zip", *case.words))
    assert all(word in text for word in words), text
    assert "still in use" in text and "Traceback" not in text
    assert (session.dataset, session.source_label, session.phenotype) == before[:3] and session.cross is None
    assert session.fits() == before[3]
