"""Genotype names read as alleles: the map from genotype to allele probabilities.

R/qtl2's ``genoprob_to_alleleprob`` turns genotype probabilities into allele
(founder) probabilities by a matrix that its cross type knows. Probabilities
computed here carry that matrix (:attr:`lmmcore.genotypes.Genotypes.allele_map`);
probabilities read from a CSV carry only their genotype names, and
:func:`allele_matrix` reads the matrix from them as R/qtl2 writes them.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .errors import LMMInputError

__all__ = ["allele_matrix", "union_allele_map"]


def allele_matrix(genotype_names: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray]:
    """The map from genotype to allele probabilities, read from the genotype names.

    Parameters
    ----------
    genotype_names : sequence of str
        Genotype names as R/qtl2 writes them: a homozygote is an allele name
        twice (``"AA"``, ``"B6B6"``), a heterozygote two allele names
        (``"AB"``, ``"B6CAST"``), a hemizygous male on the X chromosome an
        allele name and ``Y`` (``"AY"``, ``"CASTY"``); or two allele names
        separated by ``/`` or ``|`` (``"B6/CAST"``, ``"B6/Y"``), when a
        homozygote is written so (``"B6/B6"``; otherwise ``/`` is part of the
        allele names, as in the strains ``A/J``, ``C57BL/6J``). Names with no
        homozygote among them, or with an allele's own name among them
        (allele probabilities, haploids; founders ``1`` ... ``16``, where
        ``11`` is not a homozygote), are each one allele.

    Returns
    -------
    alleles : tuple of str
        The distinct alleles, in order of first appearance.
    A : ndarray, shape (n_genotypes, n_alleles)
        ``A[g, a]`` is the share of allele ``a`` in genotype ``g``: 1 for a
        single-allele genotype and for a hemizygous one, 1/2 for each allele of
        a heterozygote (a homozygote ``AA`` gives 1 to ``A``). Every row sums
        to 1.

    Raises
    ------
    LMMInputError
        If a name cannot be split into one or two alleles.

    Notes
    -----
    The alleles are the halves of the homozygotes' names; every other name is
    split into two of them (or one of them and ``Y``), and a two-letter name
    that cannot be into its letters. This is R/qtl2's
    ``genoprob_to_alleleprob`` for the f2, ail, do and hs crosses and the
    identity for inbred and haploid ones. A backcross's genotypes (``AA, AB``
    and on X ``AY, BY``: one homozygote, one heterozygote, no ``BB``) get
    R/qtl2's map too, the identity, with alleles ``A`` (for ``AA``), ``B``
    (for ``AB``), ``AY``, ``BY``. Genotypes from :func:`lmmcore.genoprob`
    carry their cross type's own map (:meth:`Genotypes.allele_matrix`).
    """
    names = [str(g) for g in genotype_names]
    split = [g.replace("|", "/").split("/") for g in names]
    # '/' separates two alleles only where a homozygote is written with it (B6/B6); otherwise it is part
    # of the allele names, as in the strains A/J, C57BL/6J (R/qtl2's A/JA/J, A/JC57BL/6J, A/JY)
    known = list(dict.fromkeys(p[0] for p in split if len(p) == 2 and p[0] == p[1] != ""))
    separated = bool(known)
    if not separated:
        known = [g[: len(g) // 2] for g in names if len(g) % 2 == 0 and g and g[: len(g) // 2] * 2 == g]
        if set(known) & set(names):  # an allele's own name among them: alleles (founders 1 ... 16 hold 11)
            known = []
        backcross = _backcross_alleles(names, known)
        if backcross is not None:  # R/qtl2's backcross: allele probabilities are the genotype probabilities
            return backcross, np.eye(len(names))
    parsed: list[list[str]] = []
    for name, parts in zip(names, split):
        if separated and len(parts) > 1:
            if len(parts) == 2 and parts[1] == "Y" and "Y" not in known:
                parts = parts[:1]  # a hemizygous male written B6/Y
        elif not known:
            parts = [name]
        else:
            parts = _split_genotype(name, known)
        if len(parts) not in (1, 2) or any(p == "" for p in parts):
            raise LMMInputError(
                f"The genotype name {name!r} does not spell its alleles ({', '.join(known)}); name a "
                "genotype by two allele names (AB, B6CAST), an allele and Y for a hemizygous male (AY), "
                "or two allele names separated by '/' (B6/CAST)."
            )
        parsed.append(parts)
    alleles: list[str] = []
    for parts in parsed:
        alleles.extend(a for a in parts if a not in alleles)
    index = {a: k for k, a in enumerate(alleles)}
    A = np.zeros((len(parsed), len(alleles)))
    for g, parts in enumerate(parsed):
        for a in parts:
            A[g, index[a]] += 1.0 / len(parts)
    return tuple(alleles), A


def _backcross_alleles(names: list[str], known: list[str]) -> tuple[str, ...] | None:
    """R/qtl2's allele names of a backcross's genotypes (``AA, AB`` and on X ``AY, BY``), else None.

    A backcross is the one cross whose genotypes hold one homozygote ``aa`` and
    one heterozygote ``ab`` and no ``bb``; its allele names are ``a`` (for
    ``aa``), ``b`` (for ``ab``) and the males' ``aY``, ``bY`` as they are.
    """
    if len(known) != 1 or len(set(names)) != len(names):
        return None
    a = known[0]
    het = [g for g in names if g.startswith(a) and g not in (a, a + a, a + "Y")]
    if len(het) != 1 or "Y" in (a, het[0][len(a):]):
        return None
    b = het[0][len(a):]
    if b == a or not set(names) <= {a + a, a + b, a + "Y", b + "Y"}:
        return None
    return tuple({a + a: a, a + b: b}.get(g, g) for g in names)


def _split_genotype(name: str, known: list[str]) -> list[str]:
    """``name`` as one or two of the ``known`` alleles (or one and ``Y``); ``[]`` when it is neither."""
    if name[: len(name) // 2] * 2 == name and name[: len(name) // 2] in known:
        return [name[: len(name) // 2]]
    if name.endswith("Y") and "Y" not in known and (name[:-1] in known or len(name) == 2):
        return [name[:-1]]
    for a in known:
        if name.startswith(a) and name[len(a):] in known:
            return [a, name[len(a):]]
    return list(name) if len(name) == 2 else []


def union_allele_map(union: Sequence[str], pieces: Iterable[tuple[str, Sequence[str], Sequence[str], np.ndarray]],
                     where: str, todo: str) -> tuple[tuple[str, ...], np.ndarray]:
    """One map for the union layout from each chromosome's own.

    Parameters
    ----------
    union : sequence of str
        The genotype names of the union layout (rows of the result).
    pieces : iterable of (chromosome, genotypes, alleles, block)
        Each chromosome's genotypes, alleles and ``(genotypes, alleles)``
        map; the alleles are numbered in the order they first appear.
    where, todo : str
        The start of the error message (who gives the names) and what to do.

    Returns
    -------
    alleles : tuple of str
    A : ndarray, shape (len(union), n_alleles)

    Raises
    ------
    LMMInputError
        If a name stands for two genotypes or alleles: repeated within a
        chromosome, or one genotype name mapped differently on two (alleles
        ``A`` and ``AA`` make ``AAA`` both ``A AA`` and ``AA A``), which would
        merge their probabilities.
    """
    pieces = list(pieces)
    alleles: list[str] = []
    for _, _, carried, _ in pieces:
        alleles += [a for a in carried if a not in alleles]
    col_of = {a: k for k, a in enumerate(alleles)}
    row_of = {g: k for k, g in enumerate(union)}
    A = np.zeros((len(union), len(alleles)))
    done = np.zeros(len(union), dtype=bool)
    for chrom, own, carried, block in pieces:
        own, carried = list(own), list(carried)
        rows = [row_of[g] for g in own]
        full = np.zeros((len(own), len(alleles)))
        full[:, [col_of[a] for a in carried]] = block
        clash = [g for g in own if own.count(g) > 1] + [a for a in carried if carried.count(a) > 1]
        clash += [g for g, r, b in zip(own, rows, full) if done[r] and not np.array_equal(A[r], b)]
        if clash:
            raise LMMInputError(
                f"{where} give the same name to different genotypes or alleles "
                f"({', '.join(dict.fromkeys(clash))} on chromosome {chrom}); {todo}"
            )
        A[rows] = full
        done[rows] = True
    return tuple(alleles), A
