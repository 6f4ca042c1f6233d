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


@numba.njit(cache=True)
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
def _spread(n: float, sx: float, sy: float, sq: float) -> float:
    if n <= 0:
        return 0.0
    return sq - (sx * sx + sy * sy) / n


@numba.njit(cache=True, inline="always")
def _over(households: float, cap: float) -> float:
    return households - cap if households > cap else 0.0


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def _touching(a, table, count, grid, bounds, indptr, indices, seen, out) -> int:
    """Grids with ``a``'s size bounds that touch ``a``, in the order met, into ``out``."""
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


@numba.njit(cache=True)
def _scored_splits(m, lo, hi, px, py, ph, tot, cap, masks, scores) -> int:
    """Every split with node 0 on the first side and both sides in ``lo..hi``; returns the count.

    For each allowed size the first sides are walked in revolving-door order: each one differs
    from the one before by one node in and one node out, so each costs a few additions.
    """
    found = 0
    if m <= _MAX_EXHAUSTIVE:
        # spread of both sides = total square sum - |sum S|^2 / n_S - |sum C|^2 / n_C
        with_cap = cap < np.inf
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
    # large pairs: the current split's single moves and two-node swaps
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


@numba.njit(cache=True)
def _pair_table(m, px, py, bits, length2) -> None:
    """Every node pair as a two-bit mask, and its squared length (into ``bits``, ``length2``)."""
    k = 0
    for i in range(m):
        for j in range(i + 1, m):
            bits[k] = (np.int64(1) << i) | (np.int64(1) << j)
            length2[k] = (px[i] - px[j]) ** 2 + (py[i] - py[j]) ** 2
            k += 1


@numba.njit(cache=True)
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


@numba.njit(cache=True)
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
def _work_buffers(room: int):
    """Scratch arrays of one search thread, reused for every pair."""
    pairs = _MAX_PAIR * (_MAX_PAIR - 1) // 2
    return (
        np.empty(_MAX_PAIR, dtype=np.int64),  # nodes
        np.empty(_MAX_PAIR, dtype=np.int64),  # neighbour bits
        np.empty((3, _MAX_PAIR)),  # x, y, households relative to the pair
        np.empty(5),  # totals: n, x, y, squares, households
        np.empty(room, dtype=np.int64),  # split masks
        np.empty(room),  # split scores
        np.empty(room),  # spread of the splits measured by diameter
        np.empty(pairs, dtype=np.int64),  # node pairs as bits
        np.empty(pairs),  # squared pair lengths
        np.empty(_DIAMETER_CANDIDATES, dtype=np.int64),  # lowest splits
    )


@numba.njit(cache=True)
def _resplit(
    a, b, table, count, whole, xy, hh, cap, lo, hi, indptr, indices, slot, work, by_diameter
):
    """Re-split grids ``a`` and ``b`` in place when a better split exists; returns whether.

    ``whole`` says which grids are in one piece; it is kept up to date, and while both grids are
    whole their buildings' links are only looked up when a split scores better.
    """
    nodes, nbr, rel, tot, buf_m, buf_s, spread, pair_bits, pair_length2, top = work
    px, py, ph = rel[0], rel[1], rel[2]
    na, nb = count[a], count[b]
    m = na + nb
    nodes[:na] = table[a, :na]
    nodes[na:m] = table[b, :nb]
    linked = not (whole[a] and whole[b])
    if linked:
        _node_bits(nodes, m, slot, indptr, indices, nbr)
    # coordinates relative to the pair's mean keep the sums precise
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
    full = (np.int64(1) << m) - 1
    current = (np.int64(1) << na) - 1
    now = _score(current, m, px, py, ph, tot, cap)
    pieces_now = _pieces(current, nbr, m) + _pieces(full ^ current, nbr, m) if linked else 2
    buf_m[0] = current
    found = _scored_splits(m, lo, hi, px, py, ph, tot, cap, buf_m, buf_s)
    if by_diameter:
        _pair_table(m, px, py, pair_bits, pair_length2)
        now = _diameter_score(current, now, m, full, ph, cap, pair_bits, pair_length2)
        if pieces_now == 2:
            # of a whole pair only the splits lowest in spread are measured (the rest rarely win)
            picked = _lowest(buf_s, found, top)
            for t in range(picked):
                spread[t] = buf_s[top[t]]
            buf_s[:found] = np.inf
            for t in range(picked):
                k = top[t]
                buf_s[k] = _diameter_score(
                    buf_m[k], spread[t], m, full, ph, cap, pair_bits, pair_length2
                )
        else:
            for k in range(found):
                buf_s[k] = _diameter_score(
                    buf_m[k], buf_s[k], m, full, ph, cap, pair_bits, pair_length2
                )
    tol = 1e-9 * (1.0 + abs(now))
    best, best_pieces, best_score = np.int64(-1), pieces_now, now - tol
    if pieces_now == 2:
        # both grids whole: the lowest-scoring split that keeps both whole, if below the current;
        # few splits ever score below it, so they are simply taken lowest first
        while True:
            pick = -1
            for k in range(found):
                if buf_s[k] < best_score and (pick < 0 or buf_s[k] < buf_s[pick]):
                    pick = k
            if pick < 0:
                break
            if not linked:
                _node_bits(nodes, m, slot, indptr, indices, nbr)
                linked = True
            mask = buf_m[pick]
            if _pieces(mask, nbr, m) + _pieces(full ^ mask, nbr, m) == 2:
                best = mask
                break
            buf_s[pick] = np.inf
    else:
        for k in range(found):
            mask = buf_m[k]
            p = _pieces(mask, nbr, m) + _pieces(full ^ mask, nbr, m)
            if p < best_pieces or (p == best_pieces and buf_s[k] < best_score):
                best, best_pieces, best_score = mask, p, buf_s[k]
    if best < 0:
        return False
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
    whole[a] = _pieces(best, nbr, m) == 1
    whole[b] = _pieces(full ^ best, nbr, m) == 1
    return True


# --------------------------------------------------------------------------- the search


@numba.njit(cache=True, nogil=True)
def _regroup_group(
    grids, xy, households, cap, grid, bounds, indptr, indices, by_diameter, table, count, shared
) -> int:
    """The work queue over ``grids`` (whole units: their neighbours are among them)."""
    slot, seen, queued, changed_at, settled_at, whole = shared
    width = table.shape[1]
    biggest = min(2 * width, _MAX_PAIR)
    room = (1 << (biggest - 1)) if biggest <= _MAX_EXHAUSTIVE else biggest * biggest + 1
    work = _work_buffers(room)
    queue = np.empty(len(grids) + 1, dtype=np.int64)
    queue[: len(grids)] = grids
    head, size = 0, len(grids)
    partners = np.empty(len(grids), dtype=np.int64)
    # the clock ticks once per visit; a pair needs no new look when its partner was last checked
    # against all its neighbours after both grids last changed
    clock = 0
    moves = 0
    while size:
        a = queue[head]
        head = (head + 1) % len(queue)
        size -= 1
        queued[a] = False
        clock += 1
        k = 0
        for t in range(_touching(a, table, count, grid, bounds, indptr, indices, seen, partners)):
            b = partners[t]
            fits = count[a] + count[b] <= _MAX_PAIR
            if fits and settled_at[b] < max(changed_at[a], changed_at[b]):
                partners[k] = b
                k += 1
        settled_at[a] = clock
        for t in range(k):
            b = partners[t]
            lo, hi = bounds[a, 0], bounds[a, 1]
            if _resplit(
                a,
                b,
                table,
                count,
                whole,
                xy,
                households,
                cap,
                lo,
                hi,
                indptr,
                indices,
                slot,
                work,
                by_diameter,
            ):
                moves += 1
                settled_at[a] = -1
                for g in (a, b):
                    changed_at[g] = clock
                    for s in range(count[g]):
                        grid[table[g, s]] = g
                    if not queued[g]:
                        queued[g] = True
                        queue[(head + size) % len(queue)] = g
                        size += 1
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
    sizes = np.bincount(grid[grid >= 0], minlength=n_grids)
    width = int(max(bounds[:, 1].max(), sizes.max()))
    table, count = grid_members(grid, n_grids, width)
    shared = (
        np.full(len(grid), -1, dtype=np.int64),  # slot of a building in the pair being split
        np.full(n_grids, -1, dtype=np.int64),  # seen: the grid whose partners are listed
        np.ones(n_grids, dtype=np.bool_),  # queued
        np.zeros(n_grids, dtype=np.int64),  # changed_at
        np.full(n_grids, -1, dtype=np.int64),  # settled_at
        grid_pieces(grid, n_grids, np.zeros(len(grid), dtype=np.int64), adjacency)[0] == 1,
    )
    inputs = (
        np.ascontiguousarray(xy, dtype=np.float64),
        np.zeros(len(grid)) if households is None else households.astype(np.float64),
        np.inf if cap is None else float(cap),
        grid,
        bounds.astype(np.int64),
        adjacency.indptr.astype(np.int64),
        adjacency.indices.astype(np.int64),
        by_diameter,
        table,
        count,
        shared,
    )
    groups = _work_groups(unit, cores() if n_grids >= _THREADED_FROM else 1)
    if len(groups) == 1:
        return int(_regroup_group(groups[0], *inputs))
    return sum(worker_pool().map(lambda grids: int(_regroup_group(grids, *inputs)), groups))


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
