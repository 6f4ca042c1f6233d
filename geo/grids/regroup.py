"""Regroup neighbouring grids: re-split every pair of touching grids as well as it can be split.

Steps 3 and 4 of :mod:`geo.grids.partition`. Two neighbouring grids ``a`` and ``b`` hold ``m``
buildings together (8 to 10 for grids of 4 to 5); every way to split those buildings into two
grids of allowed sizes is scored and the best one is kept when it beats the current split.
Better means, in this order: fewer disconnected pieces, fewer households above the cap, then
less spread (sum of squared distances to each grid's centre) or, with ``by_diameter``, a smaller
sum of the two grids' diameters. A single-building move and a two-building swap are both
re-splits, so this one move covers them and everything between.

Grids are visited from a work queue: a grid whose members changed goes back on the queue, so the
search stops exactly when no pair of neighbouring grids can be split better (a local optimum of
the pair neighbourhood). Per pair the splits are enumerated in revolving-door order (one building
in, one out), so each costs a few additions; contiguity is tested on ``m``-bit masks, and only
when a split scores better. Compiled with numba; units (whose grids never touch) are shared out
to the cores, and the result depends only on the input.

Examples
--------
>>> from scipy import sparse
>>> xy = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [0, 9], [1, 9], [2, 9], [3, 9.0]])
>>> ring = [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7), (0, 4), (3, 7)]
>>> rows, cols = np.array(ring).T
>>> graph = sparse.csr_array((np.ones(16), (np.r_[rows, cols], np.r_[cols, rows])), shape=(8, 8))
>>> grid = np.array([0, 1, 0, 1, 0, 1, 0, 1])  # two grids, each in pieces
>>> regroup_pairs(xy, grid, np.array([[4, 4], [4, 4]]), np.zeros(2, int), graph) > 0
True
>>> grid.tolist()  # the two rows
[0, 0, 0, 0, 1, 1, 1, 1]
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import pandas as pd
from scipy import sparse

from geo.threads import cores, worker_pool

__all__ = ["grid_pieces", "regroup_pairs"]

#: weight of one household above the cap against one square metre of spread (lexicographic order
#: folded into one score: spreads stay far below it)
EXCESS_WEIGHT = 1e9
#: largest pair (buildings in two grids) whose splits are all enumerated; larger pairs (only with
#: a ``max_size`` above 7) try the single moves and swaps of the current split
_MAX_EXHAUSTIVE = 14
#: splits of a whole pair whose diameters are measured
_DIAMETER_CANDIDATES = 8
#: weight of the spread (m²) when the diameters (m) decide: it only breaks ties
_SPREAD_TIE = 1e-6


def _revolving_door(n: int, k: int) -> list[int]:
    """The ``k``-subsets of ``0..n-1`` as bit masks, each one swap away from the one before."""
    if k == 0:
        return [0]
    if k == n:
        return [(1 << n) - 1]
    return _revolving_door(n - 1, k) + [
        mask | (1 << (n - 1)) for mask in reversed(_revolving_door(n - 1, k - 1))
    ]


def _door_tables() -> tuple[np.ndarray, ...]:
    """First sides (node 0 and ``n - 1`` others of ``m``) in revolving-door order, for every
    ``m`` and ``n``: the masks, the node each step brings in and the node it takes out, and
    where each ``(m, n)`` walk starts (``at[m, n]`` to ``at[m, n + 1]``).
    """
    masks: list[int] = []
    at = np.zeros((_MAX_EXHAUSTIVE + 1, _MAX_EXHAUSTIVE + 2), dtype=np.int64)
    for m in range(1, _MAX_EXHAUSTIVE + 1):
        for n in range(1, m + 1):
            at[m, n] = len(masks)
            masks.extend((mask << 1) | 1 for mask in _revolving_door(m - 1, n - 1))
        at[m, m + 1] = len(masks)
    masks_array = np.array(masks, dtype=np.int64)
    came = np.zeros(len(masks), dtype=np.int64)
    went = np.zeros(len(masks), dtype=np.int64)
    for k in range(1, len(masks)):
        change_in, change_out = masks[k] & ~masks[k - 1], masks[k - 1] & ~masks[k]
        if change_in and change_out:  # within one walk: exactly one node each way
            came[k], went[k] = change_in.bit_length() - 1, change_out.bit_length() - 1
    return masks_array, came, went, at


_DOOR_MASK, _DOOR_IN, _DOOR_OUT, _DOOR_AT = _door_tables()
#: grids from which the units are shared out to threads (below, threads cost more than they save)
_THREADED_FROM = 200
#: largest pair that fits the 63-bit masks (``max_size`` is at most 30)
_MAX_PAIR = 62


class _Points(NamedTuple):
    """The buildings: centroids and households (zeros without them)."""

    xy: np.ndarray
    households: np.ndarray


class _Rules(NamedTuple):
    """How splits are judged: the households cap (``inf``: none) and the measure."""

    cap: float
    by_diameter: bool


class _Grids(NamedTuple):
    """The grids being regrouped, kept up to date in place by every re-split.

    ``grid`` is each building's grid (``-1``: locked), ``bounds`` each grid's size range,
    ``table``/``count`` each grid's members (``-1`` padding), ``whole`` whether it is one piece.
    """

    grid: np.ndarray
    bounds: np.ndarray
    table: np.ndarray
    count: np.ndarray
    whole: np.ndarray


class _Links(NamedTuple):
    """The building adjacency (CSR) and ``slot``, each building's place in the pair being split
    (``-1`` outside it; shared by the threads, whose units never touch)."""

    indptr: np.ndarray
    indices: np.ndarray
    slot: np.ndarray


class _Marks(NamedTuple):
    """Per grid bookkeeping of the work queue (grids of different threads never meet).

    ``seen``: the grid whose partners are being listed; ``queued``: on the queue;
    ``changed_at``/``settled_at``: clock of the last change, and of the last look at all the
    grid's partners.
    """

    seen: np.ndarray
    queued: np.ndarray
    changed_at: np.ndarray
    settled_at: np.ndarray


class _Work(NamedTuple):
    """Scratch arrays of one search thread, reused for every pair."""

    nodes: np.ndarray  # the pair's buildings
    nbr: np.ndarray  # their neighbour bits
    rel: np.ndarray  # x, y, households relative to the pair
    tot: np.ndarray  # totals: n, x, y, squares, households
    masks: np.ndarray  # split masks
    scores: np.ndarray  # split scores
    spread: np.ndarray  # spread of the splits measured by diameter
    pair_bits: np.ndarray  # node pairs as bits
    pair_length2: np.ndarray  # squared pair lengths
    top: np.ndarray  # lowest splits


# --------------------------------------------------------------------------- small graphs


@numba.njit(cache=True)
def grid_members(grid: np.ndarray, n_grids: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(g, width)`` member table (``-1`` padding) and the member count of every grid."""
    table = np.full((n_grids, width), -1, dtype=np.int64)
    count = np.zeros(n_grids, dtype=np.int64)
    for i in range(len(grid)):
        g = grid[i]
        if g >= 0:
            table[g, count[g]] = i
            count[g] += 1
    return table, count


@numba.njit(cache=True, inline="always")
def _pieces(mask: np.int64, nbr: np.ndarray, m: int) -> int:
    """Connected pieces of the nodes in ``mask`` (bits) given each node's neighbour bits."""
    count = 0
    rest = mask
    while rest:
        comp = rest & -rest
        while True:
            grown = comp
            for i in range(m):
                if (comp >> i) & 1:
                    grown |= nbr[i]
            grown &= mask
            if grown == comp:
                break
            comp = grown
        rest &= ~comp
        count += 1
    return count


@numba.njit(cache=True, inline="always")
def _both_pieces(mask: np.int64, full: np.int64, nbr: np.ndarray, m: int) -> int:
    """Connected pieces of both sides of the split ``mask`` of the nodes ``full``."""
    return _pieces(mask, nbr, m) + _pieces(full ^ mask, nbr, m)


@numba.njit(cache=True, inline="always")
def _node_bits(nodes, m, slot, indptr, indices, nbr) -> None:
    """Neighbour bits of ``nodes[:m]`` among themselves (``slot`` is -1 outside, left so)."""
    for i in range(m):
        slot[nodes[i]] = i
    for i in range(m):
        u = nodes[i]
        bits = np.int64(0)
        for e in range(indptr[u], indptr[u + 1]):
            j = slot[indices[e]]
            if j >= 0:
                bits |= np.int64(1) << j
        nbr[i] = bits
    for i in range(m):
        slot[nodes[i]] = -1


@numba.njit(cache=True, inline="always")
def _link(m: int, links: _Links, work: _Work) -> None:
    """Neighbour bits of the pair's ``m`` buildings (:func:`_node_bits`)."""
    _node_bits(work.nodes, m, links.slot, links.indptr, links.indices, work.nbr)


@numba.njit(cache=True, inline="always")
def _spread(n: float, sx: float, sy: float, sq: float) -> float:
    if n <= 0:
        return 0.0
    return sq - (sx * sx + sy * sy) / n


@numba.njit(cache=True, inline="always")
def _over(households: float, cap: float) -> float:
    return households - cap if households > cap else 0.0


@numba.njit(cache=True, inline="always")
def _score(mask, m, px, py, ph, tot, cap) -> float:
    """Spread of both sides of ``mask`` plus the weighted households above the cap."""
    n = sx = sy = sq = sh = 0.0
    for i in range(m):
        if (mask >> i) & 1:
            n += 1.0
            sx += px[i]
            sy += py[i]
            sq += px[i] * px[i] + py[i] * py[i]
            sh += ph[i]
    s = _spread(n, sx, sy, sq) + _spread(tot[0] - n, tot[1] - sx, tot[2] - sy, tot[3] - sq)
    return s + EXCESS_WEIGHT * (_over(sh, cap) + _over(tot[4] - sh, cap))


@numba.njit(cache=True, inline="always")
def _touching(a: int, grids: _Grids, links: _Links, seen: np.ndarray, out: np.ndarray) -> int:
    """Grids with ``a``'s size bounds that touch ``a``, in the order met, into ``out``."""
    table, count, grid, bounds = grids.table, grids.count, grids.grid, grids.bounds
    indptr, indices = links.indptr, links.indices
    k = 0
    for s in range(count[a]):
        u = table[a, s]
        for e in range(indptr[u], indptr[u + 1]):
            b = grid[indices[e]]
            if b < 0 or b == a or seen[b] == a:
                continue
            if bounds[b, 0] == bounds[a, 0] and bounds[b, 1] == bounds[a, 1]:
                seen[b] = a
                out[k] = b
                k += 1
    for t in range(k):
        seen[out[t]] = -1
    return k


# --------------------------------------------------------------------------- one pair


@numba.njit(cache=True, inline="always")
def _scored_splits(m: int, lo: int, hi: int, cap: float, work: _Work) -> int:
    """Every split with node 0 on the first side and both sides in ``lo..hi`` into
    ``work.masks``/``work.scores``; returns the count.

    Pairs up to ``_MAX_EXHAUSTIVE`` are enumerated whole (:func:`_door_splits`); larger ones try
    the current split's (``work.masks[0]``) single moves and two-node swaps.
    """
    if m > _MAX_EXHAUSTIVE:
        return _move_splits(m, lo, hi, cap, work)
    return _door_splits(m, lo, hi, cap, work)


@numba.njit(cache=True, inline="always")
def _door_splits(m: int, lo: int, hi: int, cap: float, work: _Work) -> int:
    """Every split of sizes ``lo..hi``, node 0 on the first side; returns the count.

    For each size the first sides are walked in revolving-door order: each one differs from the
    one before by one node in and one node out, so each costs a few additions. The spread of
    both sides is the total square sum - |sum S|^2 / n_S - |sum C|^2 / n_C.
    """
    px, py, ph, tot = work.rel[0], work.rel[1], work.rel[2], work.tot
    masks, scores = work.masks, work.scores
    with_cap = cap < np.inf
    found = 0
    for n in range(max(lo, m - hi), min(hi, m - lo) + 1):
        start, stop = _DOOR_AT[m, n], _DOOR_AT[m, n + 1]
        mask = _DOOR_MASK[start]
        sx, sy, sh = 0.0, 0.0, 0.0
        for i in range(m):
            if (mask >> i) & 1:
                sx += px[i]
                sy += py[i]
                sh += ph[i]
        for k in range(start, stop):
            if k > start:
                i, o = _DOOR_IN[k], _DOOR_OUT[k]
                sx += px[i] - px[o]
                sy += py[i] - py[o]
                sh += ph[i] - ph[o]
            cx, cy = tot[1] - sx, tot[2] - sy
            s = tot[3] - (sx * sx + sy * sy) / n - (cx * cx + cy * cy) / (m - n)
            if with_cap:
                s += EXCESS_WEIGHT * (_over(sh, cap) + _over(tot[4] - sh, cap))
            masks[found] = _DOOR_MASK[k]
            scores[found] = s
            found += 1
    return found


@numba.njit(cache=True, inline="always")
def _move_splits(m: int, lo: int, hi: int, cap: float, work: _Work) -> int:
    """The current split's (``work.masks[0]``) single moves and two-node swaps of sizes
    ``lo..hi``, node 0 on the first side; returns the count."""
    px, py, ph, tot = work.rel[0], work.rel[1], work.rel[2], work.tot
    masks, scores = work.masks, work.scores
    found = 0
    current = masks[0]
    for i in range(m):
        for j in range(i, m):
            mask = current ^ (np.int64(1) << i)
            if j != i:
                mask ^= np.int64(1) << j
            if not mask & 1:
                mask = ~mask & ((np.int64(1) << m) - 1)
            size = 0
            for k in range(m):
                size += (mask >> k) & 1
            if lo <= size <= hi and lo <= m - size <= hi:
                masks[found] = mask
                scores[found] = _score(mask, m, px, py, ph, tot, cap)
                found += 1
    return found


@numba.njit(cache=True, inline="always")
def _pair_table(m, px, py, bits, length2) -> None:
    """Every node pair as a two-bit mask, and its squared length (into ``bits``, ``length2``)."""
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            bits[k] = (np.int64(1) << i) | (np.int64(1) << j)
            length2[k] = (px[i] - px[j]) ** 2 + (py[i] - py[j]) ** 2
            k += 1


@numba.njit(cache=True, inline="always")
def _diameter_score(mask, spread_score, m, full, ph, cap, pair_bits, pair_length2) -> float:
    """Households above the cap, then the sum of the two sides' diameters, then the spread.

    ``spread_score`` is :func:`_score` of ``mask``; the spread only breaks ties.
    """
    excess = 0.0
    if cap < np.inf:
        inside, total = 0.0, 0.0
        for i in range(m):
            total += ph[i]
            if (mask >> i) & 1:
                inside += ph[i]
        excess = EXCESS_WEIGHT * (_over(inside, cap) + _over(total - inside, cap))
    other = full ^ mask
    first, second = 0.0, 0.0
    for k in range(m * (m - 1) // 2):
        pair = pair_bits[k]
        if mask & pair == pair:
            first = max(first, pair_length2[k])
        elif other & pair == pair:
            second = max(second, pair_length2[k])
    spread = spread_score - excess
    return excess + np.sqrt(first) + np.sqrt(second) + _SPREAD_TIE * spread


@numba.njit(cache=True, inline="always")
def _lowest(scores, found, top) -> int:
    """Positions of the ``len(top)`` lowest of ``scores[:found]`` into ``top``; returns how many."""
    k = len(top)
    filled = 0
    for i in range(found):
        if filled < k:
            top[filled] = i
            filled += 1
        elif scores[i] < scores[top[k - 1]]:
            top[k - 1] = i
        else:
            continue
        j = filled - 1  # insertion sort step keeps top ordered by score
        while j > 0 and scores[top[j]] < scores[top[j - 1]]:
            top[j], top[j - 1] = top[j - 1], top[j]
            j -= 1
    return filled


@numba.njit(cache=True)
def _work_buffers(width: int) -> _Work:
    """Scratch arrays of one search thread, for grids of up to ``width`` buildings."""
    biggest = min(2 * width, _MAX_PAIR)
    # pairs up to _MAX_EXHAUSTIVE list all their splits (at most 2^(m-1)), larger ones their
    # moves and swaps (at most m^2): room for both, since one thread meets pairs of every size
    room = 1 << (min(biggest, _MAX_EXHAUSTIVE) - 1)
    if biggest > _MAX_EXHAUSTIVE:
        room = max(room, biggest * biggest + 1)
    pairs = _MAX_PAIR * (_MAX_PAIR - 1) // 2
    return _Work(
        np.empty(_MAX_PAIR, dtype=np.int64),
        np.empty(_MAX_PAIR, dtype=np.int64),
        np.empty((3, _MAX_PAIR)),
        np.empty(5),
        np.empty(room, dtype=np.int64),
        np.empty(room),
        np.empty(room),
        np.empty(pairs, dtype=np.int64),
        np.empty(pairs),
        np.empty(_DIAMETER_CANDIDATES, dtype=np.int64),
    )


@numba.njit(cache=True, inline="always")
def _load_pair(a: int, b: int, xy, hh, table, count, work: _Work) -> int:
    """The buildings of ``a`` then ``b`` into ``work``, with their coordinates relative to the
    pair's mean (keeps the sums precise) and the totals; returns their count."""
    nodes, tot = work.nodes, work.tot
    px, py, ph = work.rel[0], work.rel[1], work.rel[2]
    na, nb = count[a], count[b]
    m = na + nb
    nodes[:na] = table[a, :na]
    nodes[na:m] = table[b, :nb]
    mx, my = 0.0, 0.0
    for i in range(m):
        mx += xy[nodes[i], 0]
        my += xy[nodes[i], 1]
    mx /= m
    my /= m
    tot[:] = 0.0
    tot[0] = m
    for i in range(m):
        px[i] = xy[nodes[i], 0] - mx
        py[i] = xy[nodes[i], 1] - my
        ph[i] = hh[nodes[i]]
        tot[1] += px[i]
        tot[2] += py[i]
        tot[3] += px[i] * px[i] + py[i] * py[i]
        tot[4] += ph[i]
    return m


@numba.njit(cache=True, inline="always")
def _by_diameter(
    m: int, current: np.int64, now: float, found: int, whole_pair: bool, cap: float, work: _Work
) -> float:
    """Re-score the split ``current`` (``now``, returned) and the ``found`` splits by diameter.

    Of a whole pair only the splits lowest in spread are measured (the rest rarely win; the
    others score ``inf``).
    """
    masks, scores, spread, top = work.masks, work.scores, work.spread, work.top
    ph, bits, length2 = work.rel[2], work.pair_bits, work.pair_length2
    full = (np.int64(1) << m) - 1
    _pair_table(m, work.rel[0], work.rel[1], bits, length2)
    now = _diameter_score(current, now, m, full, ph, cap, bits, length2)
    if not whole_pair:
        for k in range(found):
            scores[k] = _diameter_score(masks[k], scores[k], m, full, ph, cap, bits, length2)
        return now
    picked = _lowest(scores, found, top)
    for t in range(picked):
        spread[t] = scores[top[t]]
    scores[:found] = np.inf
    for t in range(picked):
        k = top[t]
        scores[k] = _diameter_score(masks[k], spread[t], m, full, ph, cap, bits, length2)
    return now


@numba.njit(cache=True, inline="always")
def _best_whole(m: int, found: int, below: float, linked: bool, links: _Links, work: _Work):
    """Of a pair of whole grids: the lowest-scoring split below ``below`` that keeps both whole
    (``-1``: none). Few splits ever score below it, so they are simply taken lowest first, and
    the links are only looked up then."""
    full = (np.int64(1) << m) - 1
    masks, scores, nbr = work.masks, work.scores, work.nbr
    while True:
        pick = -1
        for k in range(found):
            if scores[k] < below and (pick < 0 or scores[k] < scores[pick]):
                pick = k
        if pick < 0:
            return np.int64(-1)
        if not linked:
            _link(m, links, work)
            linked = True
        mask = masks[pick]
        if _both_pieces(mask, full, nbr, m) == 2:
            return mask
        scores[pick] = np.inf


@numba.njit(cache=True, inline="always")
def _best_broken(m: int, found: int, pieces_now: int, below: float, work: _Work):
    """Of a pair in more than two pieces: the split in the fewest pieces, then lowest-scoring,
    that beats the current one (``pieces_now`` pieces, scoring ``below``); ``-1``: none."""
    full = (np.int64(1) << m) - 1
    masks, scores, nbr = work.masks, work.scores, work.nbr
    best, best_pieces, best_score = np.int64(-1), pieces_now, below
    for k in range(found):
        mask = masks[k]
        p = _both_pieces(mask, full, nbr, m)
        if p < best_pieces or (p == best_pieces and scores[k] < best_score):
            best, best_pieces, best_score = mask, p, scores[k]
    return best


@numba.njit(cache=True, inline="always")
def _apply_split(a: int, b: int, best: np.int64, m: int, table, count, whole, work: _Work) -> None:
    """Grids ``a`` (the nodes in ``best``) and ``b`` (the others) take their new members."""
    nodes = work.nodes
    ka, kb = 0, 0
    for i in range(m):
        if (best >> i) & 1:
            table[a, ka] = nodes[i]
            ka += 1
        else:
            table[b, kb] = nodes[i]
            kb += 1
    table[a, ka:] = -1
    table[b, kb:] = -1
    count[a], count[b] = ka, kb
    full = (np.int64(1) << m) - 1
    whole[a] = _pieces(best, work.nbr, m) == 1
    whole[b] = _pieces(full ^ best, work.nbr, m) == 1


@numba.njit(cache=True, inline="always")
def _resplit(a, b, points: _Points, rules: _Rules, grids: _Grids, links: _Links, work: _Work):
    """Re-split grids ``a`` and ``b`` in place when a better split exists; returns whether.

    ``grids.whole`` says which grids are in one piece; it is kept up to date, and while both
    grids are whole their buildings' links are only looked up when a split scores better.
    """
    table, count, whole, cap = grids.table, grids.count, grids.whole, rules.cap
    m = _load_pair(a, b, points.xy, points.households, table, count, work)
    linked = not (whole[a] and whole[b])
    if linked:
        _link(m, links, work)
    full = (np.int64(1) << m) - 1
    current = (np.int64(1) << count[a]) - 1
    pieces_now = _both_pieces(current, full, work.nbr, m) if linked else 2
    px, py, ph = work.rel[0], work.rel[1], work.rel[2]
    now = _score(current, m, px, py, ph, work.tot, cap)
    work.masks[0] = current
    found = _scored_splits(m, grids.bounds[a, 0], grids.bounds[a, 1], cap, work)
    if rules.by_diameter:
        now = _by_diameter(m, current, now, found, pieces_now == 2, cap, work)
    below = now - 1e-9 * (1.0 + abs(now))
    if pieces_now == 2:
        best = _best_whole(m, found, below, linked, links, work)
    else:
        best = _best_broken(m, found, pieces_now, below, work)
    if best < 0:
        return False
    _apply_split(a, b, best, m, table, count, whole, work)
    return True


# --------------------------------------------------------------------------- the search


@numba.njit(cache=True, inline="always")
def _stale_partners(a: int, clock: int, grids: _Grids, links: _Links, marks: _Marks, out):
    """The partners of ``a`` that need a new look into ``out``; returns how many, and marks
    ``a`` settled at ``clock``.

    A pair needs no new look when its partner was last checked against all its neighbours after
    both grids last changed.
    """
    count, settled_at, changed_at = grids.count, marks.settled_at, marks.changed_at
    k = 0
    for t in range(_touching(a, grids, links, marks.seen, out)):
        b = out[t]
        fits = count[a] + count[b] <= _MAX_PAIR
        if fits and settled_at[b] < max(changed_at[a], changed_at[b]):
            out[k] = b
            k += 1
    settled_at[a] = clock
    return k


@numba.njit(cache=True, inline="always")
def _requeue(pair, clock: int, grids: _Grids, marks: _Marks, queue, head: int, size: int) -> int:
    """After a move: both grids of ``pair`` changed at ``clock``, their buildings are relabelled
    and they go back on the queue (a ring from ``head``); returns the queue's new size."""
    for g in pair:
        marks.changed_at[g] = clock
        for s in range(grids.count[g]):
            grids.grid[grids.table[g, s]] = g
        if not marks.queued[g]:
            marks.queued[g] = True
            queue[(head + size) % len(queue)] = g
            size += 1
    return size


@numba.njit(cache=True, nogil=True)
def _regroup_group(order, points: _Points, rules: _Rules, grids: _Grids, links: _Links, marks):
    """The work queue over the grids ``order`` (whole units: their neighbours are among them)."""
    work = _work_buffers(grids.table.shape[1])
    queue = np.empty(len(order) + 1, dtype=np.int64)
    queue[: len(order)] = order
    head, size = 0, len(order)
    partners = np.empty(len(order), dtype=np.int64)
    clock = 0  # ticks once per visit
    moves = 0
    while size:
        a = queue[head]
        head = (head + 1) % len(queue)
        size -= 1
        marks.queued[a] = False
        clock += 1
        for t in range(_stale_partners(a, clock, grids, links, marks, partners)):
            b = partners[t]
            if _resplit(a, b, points, rules, grids, links, work):
                moves += 1
                marks.settled_at[a] = -1
                size = _requeue((a, b), clock, grids, marks, queue, head, size)
                break  # a changed: its partners are collected afresh when it comes up again
    return moves


def regroup_pairs(
    xy: np.ndarray,
    grid: np.ndarray,
    bounds: np.ndarray,
    unit: np.ndarray,
    adjacency: sparse.csr_array,
    *,
    households: np.ndarray | None = None,
    cap: float | None = None,
    by_diameter: bool = False,
) -> int:
    """Re-split neighbouring grids until no pair improves; updates ``grid``, returns the moves.

    Units are independent (their grids never touch), so they are shared out to one thread per
    core (the compiled search releases the GIL); the result does not depend on the core count.

    Parameters
    ----------
    xy : (n, 2) float array
        Building centroids (metres; centred per community keeps the sums precise).
    grid : (n,) int array
        Grid id per building, ``-1`` for buildings that must not move (locked grids).
    bounds : (g, 2) int array
        Allowed size range of every grid; only grids with equal bounds are regrouped together.
    unit : (g,) int array
        The unit (piece of a community) of every grid.
    adjacency : csr_array
        The building adjacency graph.
    households : (n,) float array, optional
        Households per building; ``cap`` is the most a grid should hold.
    by_diameter : bool
        Judge splits by the sum of the two grids' diameters (the spread breaks ties) instead of
        by the spread.
    """
    n_grids = len(bounds)
    if n_grids == 0:
        return 0
    points = _Points(
        np.ascontiguousarray(xy, dtype=np.float64),
        np.zeros(len(grid)) if households is None else households.astype(np.float64),
    )
    rules = _Rules(np.inf if cap is None else float(cap), by_diameter)
    links = _Links(
        adjacency.indptr.astype(np.int64),
        adjacency.indices.astype(np.int64),
        np.full(len(grid), -1, dtype=np.int64),
    )
    marks = _Marks(
        np.full(n_grids, -1, dtype=np.int64),
        np.ones(n_grids, dtype=np.bool_),
        np.zeros(n_grids, dtype=np.int64),
        np.full(n_grids, -1, dtype=np.int64),
    )
    inputs = (points, rules, _grid_state(grid, bounds, adjacency), links, marks)
    groups = _work_groups(unit, cores() if n_grids >= _THREADED_FROM else 1)
    if len(groups) == 1:
        return int(_regroup_group(groups[0], *inputs))
    return sum(worker_pool().map(lambda order: int(_regroup_group(order, *inputs)), groups))


def _grid_state(grid: np.ndarray, bounds: np.ndarray, adjacency: sparse.csr_array) -> _Grids:
    """The member table of the grids in ``grid`` (``-1``: locked), and which are whole."""
    n_grids = len(bounds)
    sizes = np.bincount(grid[grid >= 0], minlength=n_grids)
    width = int(max(bounds[:, 1].max(), sizes.max()))
    table, count = grid_members(grid, n_grids, width)
    pieces = grid_pieces(grid, n_grids, np.zeros(len(grid), dtype=np.int64), adjacency)[0]
    return _Grids(grid, bounds.astype(np.int64), table, count, pieces == 1)


def _work_groups(unit: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Grid ids in ``n_groups`` groups of whole units, about as many grids in each."""
    codes, _ = pd.factorize(unit, sort=True)
    per_unit = np.bincount(codes)
    cumulative = np.cumsum(per_unit) - per_unit
    group = (cumulative * max(1, n_groups) // max(1, len(unit)))[codes]
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    return np.split(order.astype(np.int64), cuts)


# --------------------------------------------------------------------------- checking


@numba.njit(cache=True)
def _grid_pieces(grid, n_grids, piece, indptr, indices):
    order = np.argsort(grid, kind="mergesort")
    start = np.searchsorted(grid[order], np.arange(n_grids + 1))
    seen = np.zeros(len(grid), dtype=np.bool_)
    stack = np.empty(len(grid), dtype=np.int64)
    pieces = np.zeros(n_grids, dtype=np.int64)
    own = np.zeros(n_grids, dtype=np.int64)
    for g in range(n_grids):
        members = order[start[g] : start[g + 1]]
        for i in range(len(members)):  # distinct community pieces among the members
            new = True
            for j in range(i):
                if piece[members[j]] == piece[members[i]]:
                    new = False
                    break
            own[g] += new
        for u in members:  # depth-first search inside the grid
            if seen[u]:
                continue
            pieces[g] += 1
            seen[u] = True
            top = 0
            stack[0] = u
            while top >= 0:
                v = stack[top]
                top -= 1
                for e in range(indptr[v], indptr[v + 1]):
                    w = indices[e]
                    if not seen[w] and grid[w] == g:
                        seen[w] = True
                        top += 1
                        stack[top] = w
    return pieces, own


def grid_pieces(
    grid: np.ndarray, n_grids: int, piece: np.ndarray, adjacency: sparse.csr_array
) -> tuple[np.ndarray, np.ndarray]:
    """Per grid: its connected pieces, and the pieces of the community its buildings lie in.

    ``grid`` holds ids ``0..n_grids-1`` (``-1``: no grid); ``piece`` is the connected piece of
    the community's graph of every building. A grid in more pieces than its community's pieces
    is broken needlessly; one spanning two community pieces must bridge open space.

    Examples
    --------
    >>> from scipy import sparse
    >>> path = sparse.csr_array(([1.0] * 4, ([0, 1, 1, 2], [1, 0, 2, 1])), shape=(4, 4))
    >>> grid_pieces(np.array([0, 1, 0, 0]), 2, np.array([0, 0, 0, 1]), path)
    (array([3, 1]), array([2, 1]))
    """
    csr = sparse.csr_array(adjacency)
    return _grid_pieces(
        np.asarray(grid, dtype=np.int64),
        int(n_grids),
        np.asarray(piece, dtype=np.int64),
        csr.indptr.astype(np.int64),
        csr.indices.astype(np.int64),
    )
