"""The task seam of the scan (lmmcore.scan_tasks): a remote executor gives the same table.

The reference is the default in-process scan; the executors here do what a
cluster does to the tasks (pickle the context, genotypes and results; run the
tasks in another order) and must not change one byte.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from pandas.testing import assert_frame_equal

from conftest import random_kinship
from lmmcore.genotypes import Genotypes
from lmmcore.scan import scan
from lmmcore.scan_tasks import GroupContext, ScanTask, TaskResult, make_tasks, scan_task


def _data(n=50, m=30, seed=3):
    rng = np.random.default_rng(seed)
    D = rng.binomial(2, 0.4, size=(n, m)).astype(float)
    D[rng.random(D.shape) < 0.03] = np.nan
    ids = tuple(f"i{k}" for k in range(n))
    g = Genotypes(ids=ids, markers=tuple(f"m{j}" for j in range(m)), chromosome=("1",) * 15 + ("2",) * 15,
                  position=np.arange(m, dtype=float), dosage=D)
    y = rng.normal(size=(n, 3)) + np.nan_to_num(D[:, [2, 20, 7]])
    y[:4, 1] = np.nan  # a second missingness pattern
    return g, pd.DataFrame(y, index=list(ids), columns=["a", "b", "c"])


def _pickling_reversed(fn, context, genotypes, tasks):
    """A remote executor's view: everything crosses a process boundary; tasks run last to first."""
    context, genotypes = pickle.loads(pickle.dumps((context, genotypes)))
    assert isinstance(context, GroupContext)
    done = {}
    for task in reversed(pickle.loads(pickle.dumps(list(tasks)))):
        result = pickle.loads(pickle.dumps(fn(context, genotypes, task)))
        assert isinstance(result, TaskResult)
        done[task.index] = result
    return [done[k] for k in sorted(done)]


def test_a_pickling_out_of_order_executor_gives_the_same_scan():
    g, y = _data()
    kw = dict(kinship="loco", refit=True, n_perm=3, seed=1, chunk=4, report=lambda _m: None)
    ref = scan(g, y, **kw)
    got = scan(g, y, executor=_pickling_reversed, **kw)
    assert_frame_equal(got.table, ref.table, check_exact=True)
    assert_frame_equal(got.null, ref.null, check_exact=True)
    assert np.array_equal(got.permutations.max_lod.to_numpy(), ref.permutations.max_lod.to_numpy())


def test_tasks_cover_every_marker_and_trait_once():
    tasks = make_tasks(np.arange(10, 33), 7, chunk=5, trait_block=3)
    seen = np.zeros((7, 33), dtype=int)
    for k, t in enumerate(tasks):
        assert isinstance(t, ScanTask) and t.index == k
        seen[t.start:t.stop, t.markers] += 1
    assert seen[:, 10:].min() == 1 and seen.max() == 1 and seen[:, :10].sum() == 0


def test_scan_task_of_a_trait_block_equals_the_columns_of_the_whole_pattern():
    g, y = _data()
    contexts = []

    def keep(fn, context, genotypes, tasks):
        contexts.append(context)
        return [fn(context, genotypes, t) for t in tasks]

    scan(g, y, kinship="overall", refit=True, executor=keep, report=lambda _m: None)
    context = next(c for c in contexts if c.n_traits == 2)
    whole = scan_task(context, g, ScanTask(0, np.arange(30), 0, 2)).piece
    part = scan_task(context, g, ScanTask(0, np.arange(30), 1, 2)).piece
    assert part.phenotypes == whole.phenotypes[1:]
    np.testing.assert_allclose(part.fixed.lod, whole.fixed.lod[:, 1:], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(part.exact.lrt, whole.exact.lrt[:, 1:], rtol=1e-10, atol=1e-10)
