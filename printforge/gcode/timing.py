"""The print-time estimator: Marlin's classic-jerk junctions and trapezoidal acceleration.

The planner's forward and backward passes are min-plus recurrences on squared speeds
(v_next^2 <= v^2 + 2 a L), so they have a closed form with prefix sums and a running minimum
and run as a few numpy calls instead of a Python loop over every move.
"""

from __future__ import annotations

import math

import numpy as np

from printforge.models.printer import PrinterProfile

__all__ = [
    "E_JERK",
    "E_MAX_FEEDRATE",
    "Z_JERK",
    "Z_MAX_ACCEL",
    "OnlinePlanner",
    "estimate_time",
    "trapezoid_time",
]

# The profile carries XY limits only; these are Marlin's stock values for the other axes, and
# the PrusaSlicer adapter passes the same ones so the two estimates are comparable.
Z_JERK = 0.4
E_JERK = 5.0
E_MAX_FEEDRATE = 120.0
Z_MAX_ACCEL = 200.0


def estimate_time(
    d: np.ndarray, feed: np.ndarray, accel: np.ndarray, profile: PrinterProfile
) -> np.ndarray:
    """Seconds per move.

    Args:
        d: (n, 4) axis deltas X, Y, Z, E in mm.
        feed: (n,) requested speed in mm/s.
        accel: (n,) acceleration in effect (M204), mm/s^2; clamped to the profile's.
        profile: the machine's feedrate, acceleration and jerk limits.
    """
    n = len(d)
    if n == 0:
        return np.zeros(0)
    xyz = np.sqrt(np.einsum("ij,ij->i", d[:, :3], d[:, :3]))
    length = np.where(xyz > 0, xyz, np.abs(d[:, 3]))
    ok = length > 0
    safe_len = np.where(ok, length, 1.0)
    u = d / safe_len[:, None]  # per-mm axis components
    vmax_axis = np.array(
        [profile.max_feedrate_xy, profile.max_feedrate_xy, profile.max_feedrate_z, E_MAX_FEEDRATE]
    )
    jerk_axis = np.array([profile.max_jerk, profile.max_jerk, Z_JERK, E_JERK])
    au = np.abs(u)
    with np.errstate(divide="ignore"):
        axis_cap = np.min(np.where(au > 0, vmax_axis / au, np.inf), axis=1)
        safe_cap = np.min(np.where(au > 0, jerk_axis / au, np.inf), axis=1)
    v = np.minimum(np.maximum(feed, 0.1), axis_cap)
    a = np.minimum(accel, profile.max_acceleration)
    a = np.where(au[:, 2] > 0.5, np.minimum(a, Z_MAX_ACCEL), a)
    safe = np.minimum(v, safe_cap)

    # Junction between move i-1 and i (Marlin's classic jerk, per axis).
    vj = np.minimum(v[:-1], v[1:])
    ve = u[:-1] * vj[:, None]
    vn = u[1:] * vj[:, None]
    same = ve * vn >= 0
    jerk = np.where(same, np.abs(ve - vn), np.maximum(np.abs(ve), np.abs(vn)))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.min(np.where(jerk > jerk_axis, jerk_axis / jerk, 1.0), axis=1)
    junction = vj * factor
    both_safe = (safe[:-1] > junction * 0.99) & (safe[1:] > junction * 0.99)
    junction = np.where(both_safe, np.minimum(safe[1:], vj), junction)
    # A zero-length move (a feedrate change) breaks nothing; a dwell would, but the caller
    # accounts dwells separately.
    entry_cap = np.concatenate([[safe[0]], junction]) ** 2  # at the start of move i
    entry_cap = np.minimum(entry_cap, v**2)
    exit_end = safe[-1] ** 2

    two_al = 2 * a * length
    s = np.concatenate([[0.0], np.cumsum(two_al)])  # s[i] = sum of 2aL before move i
    caps = np.concatenate([entry_cap, [exit_end]])  # n + 1 boundaries
    fwd = np.minimum.accumulate(caps - s) + s
    # Backward: w_i <= w_{i+1} + 2 a L_i, from the end.
    bwd = (np.minimum.accumulate((caps + s)[::-1]))[::-1] - s
    w = np.maximum(np.minimum(np.minimum(fwd, bwd), caps), 0.0)
    w0, w1 = w[:-1], w[1:]
    vc2 = np.minimum(v**2, (two_al + w0 + w1) / 2)
    vc2 = np.maximum(vc2, np.maximum(w0, w1))
    vc = np.sqrt(vc2)
    v0, v1 = np.sqrt(w0), np.sqrt(w1)
    acc_d = (vc2 - w0) / (2 * a)
    dec_d = (vc2 - w1) / (2 * a)
    cruise = np.maximum(length - acc_d - dec_d, 0.0)
    t = (vc - v0) / a + (vc - v1) / a + cruise / np.maximum(vc, 1e-9)
    return np.where(ok, t, 0.0)


class OnlinePlanner:
    """The same model for a machine that gets its moves one at a time (the simulators).

    Marlin plans with a look-ahead of `planner_blocks`; a simulator has to commit a block's time
    when the block is queued. Each block is first timed as the last one queued, ending at its
    safe speed (the firmware must be able to stop there); when the next block arrives, the
    junction between the two is known and `add` also returns how much sooner the previous block
    ends. A block still running takes that correction; one already finished really did slow to a
    stop, because the planner had run dry, as on a real machine.
    """

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self._vmax = (
            profile.max_feedrate_xy,
            profile.max_feedrate_xy,
            profile.max_feedrate_z,
            E_MAX_FEEDRATE,
        )
        self._jerk = (profile.max_jerk, profile.max_jerk, Z_JERK, E_JERK)
        self._prev: tuple[tuple[float, ...], float, float, float, float, float, float] | None = None

    def reset(self) -> None:
        """The machine stopped (a dwell, a wait, a halt): the next move starts from rest."""
        self._prev = None

    def add(
        self, d: tuple[float, float, float, float], feed: float, accel: float
    ) -> tuple[float, float]:
        """(seconds of this move as the last one queued, seconds the previous one saves)."""
        xyz = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        length = xyz if xyz > 0 else abs(d[3])
        if length <= 0:
            return 0.0, 0.0
        u = tuple(c / length for c in d)
        axis_cap = min(
            (vm / abs(c) for vm, c in zip(self._vmax, u, strict=True) if c), default=math.inf
        )
        safe_cap = min(
            (j / abs(c) for j, c in zip(self._jerk, u, strict=True) if c), default=math.inf
        )
        v = min(max(feed, 0.1), axis_cap)
        a = min(accel, self.profile.max_acceleration)
        if abs(u[2]) > 0.5:
            a = min(a, Z_MAX_ACCEL)
        safe = min(v, safe_cap)
        saved = 0.0
        prev = self._prev
        if prev is None:
            w0 = safe * safe
        else:
            pu, pv, psafe, pa, plen, pw0, ptime = prev
            cap = min(self._junction(pu, pv, psafe, u, v, safe) ** 2, v * v)
            # The previous block's exit: what the junction allows, what it can reach from its
            # entry, and what this block can still stop from.
            w0 = min(cap, pw0 + 2 * pa * plen, safe * safe + 2 * a * length)
            w0 = max(w0, 0.0)
            saved = max(ptime - trapezoid_time(plen, pv, pa, pw0, w0), 0.0)
        w1 = min(safe * safe, w0 + 2 * a * length)
        seconds = trapezoid_time(length, v, a, w0, w1)
        self._prev = (u, v, safe, a, length, w0, seconds)
        return seconds, saved

    def _junction(
        self,
        pu: tuple[float, ...],
        pv: float,
        psafe: float,
        u: tuple[float, ...],
        v: float,
        safe: float,
    ) -> float:
        """Marlin's classic jerk at the corner between two moves, as `estimate_time` does."""
        vj = min(pv, v)
        factor = 1.0
        for k in range(4):
            ve, vn = pu[k] * vj, u[k] * vj
            jerk = abs(ve - vn) if ve * vn >= 0 else max(abs(ve), abs(vn))
            if jerk > self._jerk[k]:
                factor = min(factor, self._jerk[k] / jerk)
        junction = vj * factor
        if psafe > junction * 0.99 and safe > junction * 0.99:
            junction = min(safe, vj)
        return junction


def trapezoid_time(length: float, v: float, a: float, w0: float, w1: float) -> float:
    """Seconds for one move of `length` at up to `v` with acceleration `a`, entering and
    leaving at squared speeds `w0` and `w1` (the same formula `estimate_time` vectorises)."""
    vc2 = min(v * v, (2 * a * length + w0 + w1) / 2)
    vc2 = max(vc2, w0, w1)
    vc = math.sqrt(vc2)
    v0, v1 = math.sqrt(w0), math.sqrt(w1)
    cruise = max(length - (vc2 - w0) / (2 * a) - (vc2 - w1) / (2 * a), 0.0)
    return (vc - v0) / a + (vc - v1) / a + cruise / max(vc, 1e-9)
