"""Cross types: the hidden Markov model's states, initial, transition and emission probabilities.

One class per R/qtl2 cross type, holding what R/qtl2's ``src/cross_*.cpp``
define for it: the genotype names and their order, which genotypes an
individual can have (depending on the chromosome, its sex and its cross
information), the initial probabilities, the transition matrices of a
chromosome's intervals (vectorised over the intervals), the emission
probabilities of the observed genotype codes (``0`` = missing), and the
matrix turning genotype into allele probabilities.

Everything is in probabilities (not logs); :mod:`lmmcore.hmm` runs the
forward-backward equations. A *group* is a set of individuals with the same
model on a chromosome (same sex on X, same cross direction, same number of
generations): the HMM runs once per group, vectorised over its individuals.
The multi-parent types (``do``, ``hs``) are in :mod:`lmmcore.crosstypes_mpp`.

Observed codes (R/qtl2's): 1 = AA, 2 = AB, 3 = BB, 4 = not BB, 5 = not AA
(two-founder intercrosses and SNP calls of multi-parent crosses); 1 = AA,
2 = AB for ``bc`` (1 = AA, 3 = BB in males on X); 1 = AA, 2 = BB for the
inbred types (``riself``, ``risib``, ``dh``, ``haploid``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import LMMInputError

__all__ = ["CrossModel", "Group", "cross_model", "SUPPORTED_CROSSTYPES"]

#: Number of observed genotype codes (0 = missing, 1..5) in emission tables.
N_CODES = 6


@dataclass(frozen=True)
class Group:
    """The model of one group of individuals on one chromosome.

    Attributes
    ----------
    female : bool
        Sex of the group (meaningful on X).
    info : tuple of int
        The group's cross information row.
    states : ndarray of int, shape (S,)
        Indices of the group's possible genotypes among the chromosome's
        genotype names.
    init : ndarray of float, shape (S,)
        Initial probabilities ``P(g_1 = s)``.
    """

    female: bool
    info: tuple[int, ...]
    states: np.ndarray
    init: np.ndarray


def _table(rows: dict[int, list[float]], n_states: int) -> np.ndarray:
    """Emission table (N_CODES, S): ``rows[code]`` lists P(code | state);
    codes not given (missing, invalid) have probability 1 for every state."""
    out = np.ones((N_CODES, n_states))
    for code, values in rows.items():
        out[code] = values
    return out


def _intercross_matrix(R: np.ndarray) -> np.ndarray:
    """Transition matrices among AA, AB, BB for two independent meioses each
    recombining with probability ``R``: (n_int, 3, 3)."""
    s = 1.0 - R
    T = np.empty((len(R), 3, 3))
    T[:, 0, 0] = T[:, 2, 2] = s * s
    T[:, 0, 1] = T[:, 2, 1] = 2 * R * s
    T[:, 0, 2] = T[:, 2, 0] = R * R
    T[:, 1, 0] = T[:, 1, 2] = R * s
    T[:, 1, 1] = s * s + R * R
    return T


def _two_state_matrix(stay: np.ndarray, move: np.ndarray | None = None) -> np.ndarray:
    """(n_int, 2, 2) with ``stay`` on the diagonal and ``move`` (default
    ``1 - stay``) off it."""
    move = 1.0 - stay if move is None else move
    T = np.empty((len(stay), 2, 2))
    T[:, 0, 0] = T[:, 1, 1] = stay
    T[:, 0, 1] = T[:, 1, 0] = move
    return T


def _intercross_emission(e: float) -> np.ndarray:
    """Emission table of AA, AB, BB (autosomes of f2 and ail, female X of ail)."""
    return _table(
        {
            1: [1 - e, e / 2, e / 2],
            2: [e / 2, 1 - e, e / 2],
            3: [e / 2, e / 2, 1 - e],
            4: [1 - e / 2, 1 - e / 2, e],  # not BB
            5: [e, 1 - e / 2, 1 - e / 2],  # not AA
        },
        3,
    )


def _hemizygous_emission(e: float) -> np.ndarray:
    """Emission table of AY, BY (males on X of f2 and ail); AB is missing."""
    return _table({1: [1 - e, e], 3: [e, 1 - e], 4: [1 - e, e], 5: [e, 1 - e]}, 2)


class CrossModel:
    """Base class: a two-state inbred model (R/qtl2's default ``QTLCross``).

    Subclasses override what differs. ``key_columns(is_x, n_info)`` names the
    columns of ``[is_female, cross_info...]`` that split individuals into
    groups; ``group(...)``, ``transitions(...)`` and ``emissions(...)``
    describe one group.
    """

    name = "base"
    #: Whether the type models the X chromosome (otherwise X is an autosome).
    handles_x = True
    #: Whether the type needs founder genotypes, and how many founders it has.
    needs_founders = False
    n_founders = 2

    # ---- genotypes -------------------------------------------------------
    def genotype_names(self, alleles: tuple[str, ...], is_x: bool) -> tuple[str, ...]:
        return (alleles[0] * 2, alleles[1] * 2)

    def allele_names(self, alleles: tuple[str, ...], is_x: bool) -> tuple[str, ...]:
        """The columns of :meth:`geno2allele` (R/qtl2's ``genoprob_to_alleleprob``)."""
        return tuple(alleles[:2])

    def geno2allele(self, is_x: bool) -> np.ndarray:
        """(n_genotypes, n_alleles): allele probability = genotype probability @ this."""
        return np.eye(2)

    # ---- grouping --------------------------------------------------------
    def key_columns(self, is_x: bool, n_info: int) -> list[int]:
        return []

    def check_info(self, cross_info: np.ndarray, is_female: np.ndarray, any_x: bool, source: str) -> None:
        """Raise LMMInputError if the cross information cannot drive the model."""

    # ---- one group -------------------------------------------------------
    def group(self, female: bool, info: tuple[int, ...], is_x: bool) -> Group:
        return Group(female, info, np.arange(2), np.full(2, 0.5))

    def transitions(self, r: np.ndarray, g: Group, is_x: bool) -> np.ndarray:
        return _two_state_matrix(1.0 - r, r)

    def emissions(self, g: Group, is_x: bool, e: float, founder_geno: np.ndarray | None) -> np.ndarray:
        """(n_markers or 1, N_CODES, S): P(observed code | state)."""
        return _table({1: [1 - e, e], 2: [e, 1 - e]}, 2)[None]


class DH(CrossModel):
    """Doubled haploids (``dh``): AA, BB; ``P(switch) = r``; no X."""

    name = "dh"
    handles_x = False


class Haploid(DH):
    """Haploids (``haploid``): genotypes A, B; as ``dh``."""

    name = "haploid"

    def genotype_names(self, alleles, is_x):
        return (alleles[0], alleles[1])


class RISelf(DH):
    """RIL by selfing (``riself``): AA, BB with ``R = 2r / (1 + 2r)``; no X."""

    name = "riself"

    def transitions(self, r, g, is_x):
        R = 2 * r / (1 + 2 * r)
        return _two_state_matrix(1 - R, R)


class RISib(CrossModel):
    """RIL by sib mating (``risib``): AA, BB.

    Autosomes ``R = 4r / (1 + 6r)``. X (cross information 0 = A female x B
    male, the default; 1 = the reverse): the female founder's allele has
    probability 2/3 and, from it, ``P(stay) = (1 + 2r)/(1 + 4r)``; from the
    other, ``P(stay) = 1/(1 + 4r)``.
    """

    name = "risib"

    def key_columns(self, is_x, n_info):
        return [1] if (is_x and n_info > 0) else []

    def _forward(self, info):
        return len(info) < 1 or info[0] == 0

    def group(self, female, info, is_x):
        if not is_x:
            return super().group(female, info, is_x)
        p = np.array([2 / 3, 1 / 3]) if self._forward(info) else np.array([1 / 3, 2 / 3])
        return Group(female, info, np.arange(2), p)

    def transitions(self, r, g, is_x):
        if not is_x:
            R = 4 * r / (1 + 6 * r)
            return _two_state_matrix(1 - R, R)
        d = 1 + 4 * r
        T = np.empty((len(r), 2, 2))
        a, b = (0, 1) if self._forward(g.info) else (1, 0)  # a: the female founder's allele
        T[:, a, a] = (1 + 2 * r) / d
        T[:, a, b] = 2 * r / d
        T[:, b, b] = 1 / d
        T[:, b, a] = 4 * r / d
        return T


class BC(CrossModel):
    """Backcross (``bc``): AA, AB; on X also AY, BY (males).

    ``P(switch) = r``, initial 1/2. Males on X are observed as AA (1) or BB (3).
    """

    name = "bc"

    def genotype_names(self, alleles, is_x):
        a, b = alleles[:2]
        names = (a + a, a + b)
        return names + (a + "Y", b + "Y") if is_x else names

    def allele_names(self, alleles, is_x):
        # R/qtl2 keeps a backcross's genotype probabilities as its allele
        # probabilities (AA -> A, AB -> B: the allele from the F1 parent); on X
        # it keeps all four and names the males' AY, BY columns C, D.
        a, b = alleles[:2]
        return (a, b, a + "Y", b + "Y") if is_x else (a, b)

    def geno2allele(self, is_x):
        return np.eye(4 if is_x else 2)

    def key_columns(self, is_x, n_info):
        return [0] if is_x else []

    def group(self, female, info, is_x):
        states = np.array([2, 3]) if (is_x and not female) else np.arange(2)
        return Group(female, info, states, np.full(2, 0.5))

    def emissions(self, g, is_x, e, founder_geno):
        if is_x and not g.female:
            return _table({1: [1 - e, e], 3: [e, 1 - e]}, 2)[None]
        return _table({1: [1 - e, e], 2: [e, 1 - e]}, 2)[None]


class F2(CrossModel):
    """Intercross (``f2``): AA, AB, BB; on X AA, AB, BA, BB, AY, BY.

    Autosomes: initial 1/4, 1/2, 1/4; two meioses. X: females of the cross
    (AxB)x(AxB) (cross information 0) are AA or AB, those of (BxA)x(BxA)
    (1) are BA or BB, males AY or BY; each with initial 1/2 and
    ``P(switch) = r`` (one meiosis, in the F1 mother).
    """

    name = "f2"

    def genotype_names(self, alleles, is_x):
        a, b = alleles[:2]
        if is_x:
            return (a + a, a + b, b + a, b + b, a + "Y", b + "Y")
        return (a + a, a + b, b + b)

    def geno2allele(self, is_x):
        auto = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        if is_x:
            return np.array([[1, 0], [0.5, 0.5], [0.5, 0.5], [0, 1], [1, 0], [0, 1]], dtype=float)
        return auto

    def key_columns(self, is_x, n_info):
        return [0, 1] if is_x else []

    def check_info(self, cross_info, is_female, any_x, source):
        if not any_x:
            return
        if cross_info.shape[1] != 1 or not np.isin(cross_info[:, 0], (0, 1)).all():
            raise LMMInputError(
                f"The f2 cross{_of(source)} has an X chromosome, which needs the cross direction "
                "(one cross_info column: 0 = (AxB)x(AxB), 1 = (BxA)x(BxA)) for every individual; "
                "add it to the control file's cross_info."
            )

    def group(self, female, info, is_x):
        if not is_x:
            return Group(female, info, np.arange(3), np.array([0.25, 0.5, 0.25]))
        if not female:
            states = np.array([4, 5])
        else:
            states = np.array([0, 1]) if info[0] == 0 else np.array([2, 3])
        return Group(female, info, states, np.full(2, 0.5))

    def transitions(self, r, g, is_x):
        if is_x:
            return _two_state_matrix(1 - r, r)
        return _intercross_matrix(r)

    def emissions(self, g, is_x, e, founder_geno):
        if not is_x:
            return _intercross_emission(e)[None]
        if not g.female:
            return _hemizygous_emission(e)[None]
        if g.info[0] == 0:  # AA, AB: BB and "not BB" are treated as missing
            return _table({1: [1 - e, e], 2: [e, 1 - e], 5: [e, 1 - e]}, 2)[None]
        return _table({3: [e, 1 - e], 2: [1 - e, e], 4: [1 - e, e]}, 2)[None]  # BA, BB


class AIL(CrossModel):
    """Advanced intercross (``ail``), two founders, ``s`` generations.

    Cross information: column 1 the number of generations ``s`` (>= 2);
    column 2 (needed on X) 0 = AxB, 1 = BxA, 2 = balanced. Autosomes: as an
    F2 with ``R = (1 - (1 - 2r)(1 - r)^(s-2)) / 2``. X: AA, AB, BB
    (females), AY, BY (males), with R/qtl2's formulas for the balanced and
    the directed case.
    """

    name = "ail"

    def genotype_names(self, alleles, is_x):
        a, b = alleles[:2]
        names = (a + a, a + b, b + b)
        return names + (a + "Y", b + "Y") if is_x else names

    def geno2allele(self, is_x):
        m = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
        return np.vstack([m, np.eye(2)]) if is_x else m

    def key_columns(self, is_x, n_info):
        return [0] + list(range(1, n_info + 1)) if is_x else [1]

    def check_info(self, cross_info, is_female, any_x, source):
        if cross_info.shape[1] < 1 or (cross_info[:, 0] < 2).any():
            raise LMMInputError(
                f"The ail cross{_of(source)} needs each individual's number of generations (>= 2) "
                "as the first cross_info column; add it to the control file's cross_info."
            )
        if any_x and (cross_info.shape[1] < 2 or not np.isin(cross_info[:, 1], (0, 1, 2)).all()):
            raise LMMInputError(
                f"The ail cross{_of(source)} has an X chromosome, which needs the cross direction "
                "as a second cross_info column (0 = AxB, 1 = BxA, 2 = balanced)."
            )

    @staticmethod
    def _dir(info):
        return info[1] if len(info) > 1 else 2

    def group(self, female, info, is_x):
        auto = np.array([0.25, 0.5, 0.25])
        if not is_x:
            return Group(female, info, np.arange(3), auto)
        s, d = info[0], self._dir(info)
        states = np.arange(3) if female else np.array([3, 4])
        if d == 2:
            return Group(female, info, states, auto if female else np.full(2, 0.5))
        # frequency of the A allele in females (qf) and males (qm) at generation s
        qf = 2 / 3 + (-0.5) ** s / 3
        qm = 2 / 3 + (-0.5) ** (s - 1) / 3
        if d == 1:
            qf, qm = 1 - qf, 1 - qm
        if female:
            return Group(female, info, states, np.array([qf * qf, 2 * qf * (1 - qf), (1 - qf) ** 2]))
        return Group(female, info, states, np.array([qm, 1 - qm]))

    def transitions(self, r, g, is_x):
        s = g.info[0]
        if not is_x:
            R = 0.5 * (1 - (1 - 2 * r) * (1 - r) ** (s - 2))
            return _intercross_matrix(R)
        d = self._dir(g.info)
        if d == 2:
            z = np.sqrt((1 - r) * (9 - r))
            w, y = (1 - r + z) / 4, (1 - r - z) / 4
            wk, yk = w ** (s - 2), y ** (s - 2)
            if g.female:
                Rf = 1 - 0.25 * (2 + (1 - 2 * r) * (wk + yk) + (3 - 6 * r + r * r) / z * (wk - yk))
                return _intercross_matrix(Rf)
            Rm = 1 - 0.25 * (2 + (1 - 2 * r) * (wk + yk) + (3 - 5 * r + 2 * r * r) / z * (wk - yk))
            return _two_state_matrix(1 - Rm, Rm)
        # directed: frequency of the A-A haplotype in males (m11) and females (f11)
        m11 = np.ones_like(r)
        f11 = np.full_like(r, 0.5)
        for i in range(2, s + 1):
            qpp = 2 / 3 + (-0.5) ** (i - 3) / 3
            qp = 2 / 3 + (-0.5) ** (i - 2) / 3
            m11, f11 = (1 - r) * f11 + r * qp * qpp, m11 / 2 + (1 - r) / 2 * f11 + r / 2 * qp * qpp
        if g.female:
            q = 2 / 3 + (-0.5) ** s / 3
            h11 = f11
        else:
            q = 2 / 3 + (-0.5) ** (s - 1) / 3
            h11 = m11
        p11 = h11 / q  # P(A at right | A at left) along a random haplotype
        p21 = (q - h11) / (1 - q)  # P(A at right | B at left)
        if d == 1:  # BxA: swap the alleles
            p11, p21 = 1 - p21, 1 - p11
        p12, p22 = 1 - p11, 1 - p21
        if not g.female:
            T = np.empty((len(r), 2, 2))
            T[:, 0, 0], T[:, 0, 1], T[:, 1, 0], T[:, 1, 1] = p11, p12, p21, p22
            return T
        T = np.empty((len(r), 3, 3))
        T[:, 0, 0], T[:, 0, 1], T[:, 0, 2] = p11 * p11, 2 * p11 * p12, p12 * p12
        T[:, 1, 0], T[:, 1, 1], T[:, 1, 2] = p11 * p21, p11 * p22 + p12 * p21, p12 * p22
        T[:, 2, 0], T[:, 2, 1], T[:, 2, 2] = p21 * p21, 2 * p22 * p21, p22 * p22
        return T

    def emissions(self, g, is_x, e, founder_geno):
        if is_x and not g.female:
            return _hemizygous_emission(e)[None]
        return _intercross_emission(e)[None]


def _of(source: str) -> str:
    return f" ({source})" if source else ""


def _registry() -> dict[str, CrossModel]:
    from .crosstypes_mpp import DO, HS, Magic19, RISelf4, RISelf8, RISelf16, RISib4, RISib8

    models = [BC(), F2(), RISelf(), RISib(), DH(), Haploid(), AIL(), DO(), HS(),
              RISelf4(), RISelf8(), RISelf16(), Magic19(), RISib4(), RISib8()]
    return {m.name: m for m in models}


#: Cross types :func:`lmmcore.hmm.genoprob` supports.
SUPPORTED_CROSSTYPES = (
    "bc", "f2", "riself", "risib", "dh", "haploid", "ail", "do", "hs",
    "riself4", "riself8", "riself16", "magic19", "risib4", "risib8",
)


def cross_model(crosstype: str, source: str = "") -> CrossModel:
    """The model of an R/qtl2 cross type.

    Raises
    ------
    LMMInputError
        For a cross type that is not supported.
    """
    models = _registry()
    if crosstype not in models:
        raise LMMInputError(
            f"The cross type {crosstype!r}{_of(source)} is not supported for genotype probabilities; "
            f"supported: {', '.join(SUPPORTED_CROSSTYPES)}."
        )
    return models[crosstype]
