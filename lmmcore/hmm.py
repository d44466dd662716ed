"""Genotype probabilities from a cross by the hidden Markov model (R/qtl2's ``calc_genoprob``).

For each chromosome, the true genotypes ``g_1, ..., g_M`` of an individual
at its markers and pseudomarkers form a Markov chain (initial probabilities
``pi``, transition matrices ``T_k`` between positions ``k`` and ``k+1`` from
the recombination fraction of the interval), and each observed genotype
``O_k`` depends only on ``g_k`` (emission ``E_k(O_k | g)``; pseudomarkers
emit nothing). The forward-backward equations give the posterior
``P(g_k = s | O_1..O_M)``. The model of each cross type is in
:mod:`lmmcore.crosstypes` (two founders) and :mod:`lmmcore.crosstypes_mpp`
(eight).

Individuals with the same model on a chromosome (same sex on X, same cross
direction or number of generations) form a group; the recursions run once
per group, vectorised over its individuals, with a Python loop over the
positions of the chromosome only.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .cross import Cross
from .crosstypes import N_CODES, CrossModel, cross_model
from .errors import LMMInputError, Report, report, reporting
from .allele_map import union_allele_map
from .genomap import MAP_FUNCTIONS, insert_pseudomarkers, map_to_recfrac
from .genotypes import Genotypes

__all__ = ["allele_probs", "forward_backward", "genoprob", "write_genoprobs"]


#: Intervals whose transition matrices are built at a time (bounds memory
#: to about BLOCK * S^2 doubles per group).
BLOCK = 1024

#: Finished positions copied to the output at a time.
FLUSH = 64


def forward_backward(
    init: np.ndarray,
    transitions,
    emit: np.ndarray,
    obs: np.ndarray,
    marker_index: np.ndarray,
    groups: Sequence[tuple[int, int, int, int]] | None = None,
    out: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    cols=None,
) -> np.ndarray:
    """Posterior state probabilities of hidden Markov chains, for many individuals at once.

    Parameters
    ----------
    init : ndarray, shape (n, S) or (S,)
        Initial probabilities ``pi`` of each individual.
    transitions : sequence of ndarray (M - 1, S_g, S_g), or callable
        Per group, ``T[k, s, t] = P(g_{k+1} = t | g_k = s)`` among the
        group's states; or a function ``(k0, k1) -> list`` giving the
        intervals ``k0 .. k1 - 1`` of every group (called block by block,
        to bound memory).
    emit : ndarray, shape (n_markers or 1, n_codes, S)
        ``emit[j, c, s] = P(O = c | g = s)`` at marker ``j`` (one table for
        all markers when the first axis is 1).
    obs : ndarray of int, shape (n, n_markers)
        Observed codes, indices into the second axis of ``emit`` (0 = missing).
    marker_index : ndarray of int, shape (M,)
        For each position, its column of ``obs``, or -1 for a pseudomarker.
    groups : sequence of (row_start, row_stop, state_start, state_stop), optional
        Individuals sorted by group; each group's rows and the contiguous
        range of states it can be in (the others have probability 0).
        Default: one group, all states.
    out : ndarray, shape (N, M, S_out), optional
        Where to write the result; individual ``i`` goes to row ``rows[i]``
        and its states to the columns ``cols`` (a slice or index array).

    Returns
    -------
    ndarray, shape (n, M, S), or ``out``
        ``P(g_k = s | O)`` for each individual and position.

    Notes
    -----
    Scaled recursions (Rabiner 1989): with ``e_k(s) = E_k(O_k | s)``,
    ``a_1 = pi * e_1``, ``a_{k+1} = (a_k T_k) * e_{k+1}`` and
    ``b_M = 1``, ``b_k = T_k (e_{k+1} * b_{k+1})``, each rescaled to sum to 1
    (the scale cancels); then ``P(g_k = s | O) = a_k(s) b_k(s) / sum_s a_k b_k``.
    This equals R/qtl2's log-space ``exp(alpha + beta - log sum exp(alpha + beta))``.
    The forward probabilities are kept in ``out`` and combined there with
    the backward ones, so no other array of the result's size is made.
    """
    n = obs.shape[0]
    n_pos = len(marker_index)
    S = np.shape(init)[-1]
    groups = [(0, n, 0, S)] if groups is None else list(groups)
    if out is None:
        out = np.empty((n, n_pos, S))
        rows, cols = slice(None), slice(None)
    elif rows is None:
        rows = slice(None)
    if cols is None:
        cols = slice(None)
    if isinstance(rows, np.ndarray) and not isinstance(cols, slice):
        rows, cols = rows[:, None], np.asarray(cols)[None, :]
    obs_t = np.ascontiguousarray(np.asarray(obs).T)  # (n_markers, n): rows are contiguous
    shared = emit.shape[0] == 1
    if callable(transitions):
        if n_pos - 1 <= BLOCK:  # one block: build it once for both passes
            whole = transitions(0, max(n_pos - 1, 0))

            def block_of(k0, k1):
                return [t[k0:k1] for t in whole]
        else:
            block_of = transitions
    else:
        def block_of(k0, k1):
            return [t[k0:k1] for t in transitions]

    def e_at(k: int) -> np.ndarray | None:
        j = marker_index[k]
        if j < 0:
            return None
        return emit[0 if shared else j][obs_t[j]]

    ones = np.ones(S)

    def normalise(x: np.ndarray) -> None:
        x *= (1.0 / (x @ ones))[:, None]  # a matrix-vector product sums rows fastest

    # forward probabilities, position-major so that each step reads and writes one block
    alpha = np.zeros((n_pos, n, S))

    fancy = isinstance(cols, np.ndarray)

    def flush(k0: int, k1: int) -> None:
        """Copy the finished positions k0 .. k1 - 1 into ``out`` (fancy columns: one position at a time)."""
        if fancy:
            for k in range(k0, k1):
                out[rows, k, cols] = alpha[k]
        elif k1 > k0:
            out[rows, k0:k1, cols] = alpha[k0:k1].transpose(1, 0, 2)

    with np.errstate(invalid="ignore", divide="ignore"):
        alpha[0] = init
        e = e_at(0)
        if e is not None:
            alpha[0] *= e
        normalise(alpha[0])
        for k0 in range(0, n_pos - 1, BLOCK):
            k1 = min(k0 + BLOCK, n_pos - 1)
            T = block_of(k0, k1)
            for k in range(k0, k1):
                for g, (lo, hi, s0, s1) in enumerate(groups):
                    np.matmul(alpha[k, lo:hi, s0:s1], T[g][k - k0], out=alpha[k + 1, lo:hi, s0:s1])
                e = e_at(k + 1)
                if e is not None:
                    alpha[k + 1] *= e
                normalise(alpha[k + 1])
        b = np.zeros((n, S))
        v = np.zeros((n, S))
        for lo, hi, s0, s1 in groups:
            b[lo:hi, s0:s1] = 1.0
        done = n_pos  # positions >= done are in out
        last = ((n_pos - 2) // BLOCK) * BLOCK if n_pos > 1 else 0
        for k0 in range(last, -1, -BLOCK):
            k1 = min(k0 + BLOCK, n_pos - 1)
            T = block_of(k0, k1)
            for k in range(k1 - 1, k0 - 1, -1):
                e = e_at(k + 1)
                if e is not None:
                    np.multiply(b, e, out=v)
                else:
                    v[:] = b
                for g, (lo, hi, s0, s1) in enumerate(groups):
                    np.matmul(v[lo:hi, s0:s1], T[g][k - k0].T, out=b[lo:hi, s0:s1])
                normalise(b)
                alpha[k] *= b
                normalise(alpha[k])
                if done - k >= FLUSH:
                    flush(k, done)
                    done = k
        flush(0, done)
    return out


def _groups(model: CrossModel, is_x: bool, is_female: np.ndarray, cross_info: np.ndarray):
    """Split individuals into groups sharing the model: (member indices, female, info) each."""
    n = len(is_female)
    key_table = np.column_stack([is_female.astype(np.int64), cross_info.astype(np.int64)]) if n else np.zeros((0, 1))
    cols = model.key_columns(is_x, cross_info.shape[1])
    if not cols:
        keys = np.zeros(n, dtype=np.int64)
    else:
        _, keys = np.unique(key_table[:, cols], axis=0, return_inverse=True)
        keys = keys.ravel()
    out = []
    for k in np.unique(keys):
        members = np.flatnonzero(keys == k)
        first = members[0]
        out.append((members, bool(is_female[first]), tuple(int(v) for v in cross_info[first])))
    return out


def _one_chromosome(model, markers_map, positions, geno, founder_geno, is_x, is_female, info,
                    error_prob, map_function, out, cols):
    """Posterior probabilities on one chromosome, written into ``out``
    (n, M, n_genotypes) at the genotype columns ``cols`` of the chromosome."""
    where = {str(name): j for j, name in enumerate(markers_map.index)}
    marker_index = np.array([where.get(str(name), -1) for name in positions.index])
    rf = map_to_recfrac(positions.to_numpy(float), map_function)
    n_states = len(cols)
    groups = _groups(model, is_x, is_female, info)
    order = np.concatenate([members for members, _, _ in groups])
    bounds, models = [], []
    init = np.zeros((len(order), n_states))
    start = 0
    emit_parts: list[np.ndarray] = []  # distinct emission tables (most groups share one)
    table_of = []
    for members, female, row in groups:
        g = model.group(female, row, is_x)
        s0, s1 = int(g.states[0]), int(g.states[-1]) + 1
        if not np.array_equal(g.states, np.arange(s0, s1)):  # pragma: no cover - models keep them contiguous
            raise AssertionError(f"{model.name}: the states of a group must be contiguous")
        models.append(g)
        bounds.append((start, start + len(members), s0, s1))
        init[start:start + len(members), s0:s1] = g.init
        start += len(members)
        tab = model.emissions(g, is_x, error_prob, founder_geno)  # (m or 1, C, S_g)
        full = np.ones(tab.shape[:2] + (n_states,))
        full[:, :, s0:s1] = tab
        same = [k for k, t in enumerate(emit_parts) if t.shape == full.shape and np.array_equal(t, full)]
        if same:
            table_of.append(same[0])
        else:
            table_of.append(len(emit_parts))
            emit_parts.append(full)
    # one emission table with a block of codes per distinct table: code = table * C + observed
    width = max(t.shape[0] for t in emit_parts)
    emit = np.concatenate([np.broadcast_to(t, (width,) + t.shape[1:]) for t in emit_parts], axis=1)
    obs = np.asarray(geno)[order].astype(np.intp)
    obs = np.where((obs >= 0) & (obs < N_CODES), obs, 0)
    table_of_row = np.repeat(np.array(table_of), [b[1] - b[0] for b in bounds])
    codes = obs + (table_of_row * N_CODES)[:, None]

    def transitions(k0: int, k1: int) -> list[np.ndarray]:
        return [model.transitions(rf[k0:k1], g, is_x) for g in models]

    if np.array_equal(cols, np.arange(cols[0], cols[0] + n_states)):
        cols = slice(int(cols[0]), int(cols[0]) + n_states)
    forward_backward(init, transitions, emit, codes, marker_index, bounds, out=out, rows=order, cols=cols)


def _validate(cross: Cross, model: CrossModel, chromosomes: Sequence[str], error_prob: float, map_function: str):
    if not (0 <= error_prob <= 1):
        raise LMMInputError(f"error_prob is {error_prob}; it must be a probability between 0 and 1.")
    if map_function not in MAP_FUNCTIONS:
        raise LMMInputError(f"Unknown map function {map_function!r}; use one of {', '.join(MAP_FUNCTIONS)}.")
    unknown = [c for c in chromosomes if c not in cross.gmap]
    if unknown:
        raise LMMInputError(
            f"Chromosome {', '.join(unknown)} is not in the cross{_of(cross.source)} "
            f"(it has {', '.join(cross.chromosomes)}); check the chromosome names."
        )
    any_x = any(cross.is_x_chr.get(c, False) for c in chromosomes) and model.handles_x
    info = np.asarray(cross.cross_info).reshape(cross.n, -1)
    model.check_info(info, np.asarray(cross.is_female, bool), any_x, cross.source)
    for c in chromosomes:
        m = len(cross.gmap[c])
        if cross.geno[c].shape != (cross.n, m):
            raise LMMInputError(
                f"The genotypes of chromosome {c}{_of(cross.source)} have shape {cross.geno[c].shape}, "
                f"not ({cross.n} individuals, {m} markers of the map)."
            )
        if model.needs_founders:
            fg = None if cross.founder_geno is None else cross.founder_geno.get(c)
            k = model.n_founders
            if fg is None or fg.shape[1] != m or fg.shape[0] < k:
                raise LMMInputError(
                    f"The {cross.crosstype} cross{_of(cross.source)} needs the genotypes of its {k} founders "
                    f"at the {m} markers of chromosome {c}; add founder_geno to the control file."
                )


def _of(source: str) -> str:
    return f" ({source})" if source else ""


def genoprob(
    cross: Cross,
    *,
    step: float = 0,
    off_end: float = 0,
    stepwidth: str = "fixed",
    error_prob: float = 1e-4,
    map_function: str = "haldane",
    chromosomes: Sequence[str] | None = None,
    cores: int = 1,
    report: Report | None = None,
    alleles: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Genotypes:
    """Genotype probabilities given the observed markers (R/qtl2's ``calc_genoprob``).

    Parameters
    ----------
    cross : Cross
        The cross (R/qtl2 genotype codes; see :mod:`lmmcore.cross`).
    step, off_end, stepwidth
        Pseudomarkers, as :func:`lmmcore.genomap.insert_pseudomarkers`
        (``step=0``: markers only).
    error_prob : float
        Genotyping error probability ``e`` (R/qtl2's default 1e-4).
    map_function : {"haldane", "kosambi", "c-f", "morgan"}
        Converts the genetic map (cM) to recombination fractions.
    chromosomes : sequence of str, optional
        Chromosomes to compute (default all, in the cross's order).
    cores : int
        Threads computing chromosomes in parallel (0: one per CPU), as
        R/qtl2's ``cores``; the result does not depend on it.
    report : callable, optional
        Receiver of non-fatal messages (see :func:`lmmcore.errors.reporting`).
    alleles : bool
        Return :func:`allele_probs` of the result (R/qtl2's
        ``genoprob_to_alleleprob(calc_genoprob(...))``), each chromosome
        turned into allele probabilities as soon as it is computed: the
        genotype probabilities of all chromosomes (36 or 44 per position for
        DO, against 8 alleles) are never held at once.
    progress : callable, optional
        Called with each chromosome's name when it is done, in the calling
        thread (a progress bar).

    Returns
    -------
    Genotypes
        ``probs`` of shape ``(n, n_positions, n_genotypes)``; markers and
        pseudomarkers in map order; ``genotypes_by_chr`` gives each
        chromosome's genotypes in R/qtl2's order, ``genotype_names`` their
        union (autosomal genotypes first, then those only on X), and a
        genotype outside a chromosome's set has probability 0 there. With
        ``alleles``, as :func:`allele_probs` returns them.

    Raises
    ------
    LMMInputError
        For an unsupported cross type, an unknown chromosome or map
        function, ``error_prob`` outside ``[0, 1]``, missing cross
        information (f2 direction for X, DO generations) or founder genotypes.

    Notes
    -----
    See :func:`forward_backward`. Recombination fractions of adjacent
    positions are at least 1e-12, as in R/qtl2. For ``riself``, ``dh`` and
    ``haploid`` the X chromosome is treated as an autosome (R/qtl2 does not
    model it and warns).
    """
    with reporting(report):
        return _genoprob(cross, step, off_end, stepwidth, error_prob, map_function, chromosomes, cores,
                         as_alleles=alleles, progress=progress)


def _genoprob(cross, step, off_end, stepwidth, error_prob, map_function, chromosomes, cores, *, as_alleles=False,
              progress=None) -> Genotypes:
    if isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 0:
        raise LMMInputError(f"cores is {cores!r}; give a number of threads >= 1, or 0 for one per CPU.")
    model = cross_model(cross.crosstype, cross.source)
    chromosomes = list(cross.chromosomes if chromosomes is None else [str(c) for c in chromosomes])
    _validate(cross, model, chromosomes, error_prob, map_function)
    is_female = np.asarray(cross.is_female, dtype=bool)
    info = np.asarray(cross.cross_info).reshape(cross.n, -1)
    alleles = tuple(cross.alleles) if len(cross.alleles) >= 2 else ("A", "B")

    is_x = {}
    for c in chromosomes:
        is_x[c] = bool(cross.is_x_chr.get(c, False))
        if is_x[c] and not model.handles_x:
            report(
                f"Chromosome {c} is the X chromosome, which the {cross.crosstype} model does not treat "
                "specially; it is computed as an autosome (R/qtl2 ignores it)."
            )
            is_x[c] = False
    gmap = insert_pseudomarkers({c: cross.gmap[c] for c in chromosomes}, step, off_end, stepwidth)
    by_chr = {c: model.genotype_names(alleles, is_x[c]) for c in chromosomes}
    union: list[str] = []
    for c in sorted(chromosomes, key=lambda c: is_x[c]):  # autosomal names first
        union += [g for g in by_chr[c] if g not in union]
    col_of = {g: k for k, g in enumerate(union)}
    allele_names, allele_map = _cross_allele_map(model, alleles, chromosomes, is_x, by_chr, union,
                                                 cross.source or "the cross")
    names, to_alleles = tuple(union), None
    if as_alleles:
        names, to_alleles = allele_names, allele_map

    n_pos = sum(len(gmap[c]) for c in chromosomes)
    probs = np.zeros((cross.n, n_pos, len(names)))
    markers, chrom, pos, jobs = [], [], [], []
    offset = 0
    for c in chromosomes:
        positions = gmap[c]
        m = len(positions)
        markers += list(positions.index)
        chrom += [c] * m
        pos.append(positions.to_numpy(float))
        if m and cross.n:
            fg = None if cross.founder_geno is None else cross.founder_geno.get(c)
            cols = np.array([col_of[g] for g in by_chr[c]])
            jobs.append((c, (model, cross.gmap[c], positions, cross.geno[c], fg, is_x[c], is_female, info,
                             error_prob, map_function), probs[:, offset:offset + m], cols))
        offset += m
    # chromosomes are independent and write disjoint parts of probs; NumPy and
    # BLAS release the GIL, so threads share the cores. Each small matrix
    # product runs on one BLAS thread (more only add overhead).
    n_threads = max(1, min(len(jobs), (os.cpu_count() or 1) if cores == 0 else cores))
    done = progress or (lambda c: None)
    with threadpool_limits(limits=1, user_api="blas"):
        if n_threads == 1:
            for c, model_args, out, cols in jobs:
                _chromosome_job(model_args, out, cols, to_alleles)
                done(c)
        else:
            with ThreadPoolExecutor(n_threads) as pool:
                futures = {pool.submit(_chromosome_job, model_args, out, cols, to_alleles): c
                           for c, model_args, out, cols in jobs}
                for future in as_completed(futures):
                    future.result()
                    done(futures[future])
    if as_alleles:
        by_chr = _allele_sets(by_chr, union, names, to_alleles)
        allele_map = np.eye(len(names))
    return Genotypes(
        ids=cross.ids,
        markers=tuple(markers),
        chromosome=tuple(chrom),
        position=np.concatenate(pos) if pos else np.zeros(0),
        probs=probs,
        genotype_names=names,
        genotypes_by_chr=by_chr,
        source=cross.source,
        alleles=allele_names,
        allele_map=allele_map,
    )


def _cross_allele_map(model, alleles: tuple[str, ...], chromosomes: Sequence[str], is_x: dict, by_chr: dict,
                      union: Sequence[str], source: str = "the cross") -> tuple[tuple[str, ...], np.ndarray]:
    """The union's alleles and ``(len(union), n_alleles)`` map: each chromosome's own block from its cross type."""
    pieces = [(c, by_chr[c], model.allele_names(alleles, is_x[c]), model.geno2allele(is_x[c]))
              for c in sorted(chromosomes, key=lambda c: is_x[c])]  # autosomal alleles first
    return union_allele_map(union, pieces, f"{source}: the alleles {', '.join(alleles)}",
                            "rename the alleles in the control file so that no genotype name repeats "
                            "(not A and AA, nor B and BY).")


def _chromosome_job(model_args: tuple, out: np.ndarray, cols: np.ndarray, to_alleles: np.ndarray | None) -> None:
    """One chromosome's posteriors into ``out`` at the genotype columns ``cols``, or, with ``to_alleles``
    (the union's genotype-to-allele matrix), its allele probabilities into ``out`` (:func:`allele_probs`)."""
    if to_alleles is None:
        _one_chromosome(*model_args, out, cols)
        return
    own = np.zeros(out.shape[:2] + (len(cols),))  # this chromosome's genotypes only
    _one_chromosome(*model_args, own, np.arange(len(cols)))
    out[...] = np.einsum("nmg,ga->nma", own, to_alleles[cols], optimize=True)


def _allele_sets(by_chr: dict, names: Sequence[str], alleles: Sequence[str], M: np.ndarray) -> dict:
    """Each chromosome's alleles: those its genotypes (``by_chr``, among ``names``, the rows of ``M``) carry."""
    index = {g: k for k, g in enumerate(names)}
    return {c: tuple(a for j, a in enumerate(alleles) if M[[index[g] for g in own], j].any())
            for c, own in by_chr.items()}


def allele_probs(genotypes: Genotypes) -> Genotypes:
    """Allele (founder) probabilities from genotype probabilities (R/qtl2's ``genoprob_to_alleleprob``).

    Parameters
    ----------
    genotypes : Genotypes
        Genotype probabilities, e.g. from :func:`genoprob` or read from R/qtl2's CSV.

    Returns
    -------
    Genotypes
        ``probs`` of shape ``(n, n_markers, n_alleles)`` with the alleles as
        ``genotype_names`` (``A ... H`` for DO).

    Notes
    -----
    ``P(allele a) = sum_g P(g) c(g, a)`` with ``c`` the genotypes' own map
    (:meth:`Genotypes.allele_matrix`: the cross type's, for probabilities
    from :func:`genoprob`; otherwise read from the genotype names):
    ``c = 1`` for ``aa`` and for the hemizygous ``aY``, ``1/2`` for each
    allele of a heterozygote in f2, ail, do and hs; the identity for the
    inbred and haploid types; and, as in R/qtl2, the identity for ``bc``,
    whose allele probabilities are its genotype probabilities (``A = P(AA)``,
    ``B = P(AB)``: the allele from the F1 parent; on X also ``AY``, ``BY``,
    which R/qtl2 names ``C``, ``D``).
    """
    if genotypes.probs is None:
        raise LMMInputError("Allele probabilities need genotype probabilities, not dosages.")
    alleles, M = genotypes.allele_matrix()
    probs = np.einsum("nmg,ga->nma", genotypes.probs, M, optimize=True)
    by_chr = None
    if genotypes.genotypes_by_chr is not None:
        by_chr = _allele_sets(genotypes.genotypes_by_chr, genotypes.genotype_names, alleles, M)
    return Genotypes(
        ids=genotypes.ids,
        markers=genotypes.markers,
        chromosome=genotypes.chromosome,
        position=genotypes.position,
        probs=probs,
        genotype_names=alleles,
        genotypes_by_chr=by_chr,
        source=genotypes.source,
        alleles=alleles,
        allele_map=np.eye(len(alleles)),
    )


def write_genoprobs(genotypes: Genotypes, path: str | Path, *, force: bool = False) -> Path:
    """Write genotype (or allele) probabilities as R/qtl2's CSV layout.

    The first column (empty header) holds the IDs; then, marker by marker in
    map order, one column ``MARKER:GENOTYPE`` per genotype of that marker's
    chromosome (``genotypes_by_chr``; all genotypes when it is not set), with
    15 significant digits.

    Raises
    ------
    LMMInputError
        If ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    if path.exists() and not force:
        raise LMMInputError(f"{path} exists; choose another output file or pass force to overwrite it.")
    if genotypes.probs is None:
        raise LMMInputError("write_genoprobs needs genotype probabilities, not dosages.")
    index = {g: k for k, g in enumerate(genotypes.genotype_names)}
    by_chr = genotypes.genotypes_by_chr or {}
    header = [""]
    flat = []  # position of each output column in probs[i].ravel()
    G = len(genotypes.genotype_names)
    for j, (marker, c) in enumerate(zip(genotypes.markers, genotypes.chromosome)):
        names = by_chr.get(c, genotypes.genotype_names)
        header += [f"{marker}:{g}" for g in names]
        flat += [j * G + index[g] for g in names]
    flat = np.asarray(flat, dtype=np.intp)
    line = ",".join(["%s"] + ["%.15g"] * len(flat)) + "\n"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerow(header)
        for i, ident in enumerate(genotypes.ids):
            ident = ident if not any(ch in ident for ch in ',"\n') else '"' + ident.replace('"', '""') + '"'
            handle.write(line % (ident, *genotypes.probs[i].ravel()[flat].tolist()))
    return path
