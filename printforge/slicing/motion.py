"""Print-time estimate from a move list: Marlin's classic-jerk junctions and trapezoids.

The planner's forward and backward passes are min-plus recurrences on squared speeds
(v_next^2 <= v^2 + 2 a L), so they have a closed form with prefix sums and a running minimum
and run as a few numpy calls instead of a Python loop over every move.
"""

from __future__ import annotations

import numpy as np

from printforge.models.printer import PrinterProfile

__all__ = ["E_JERK", "E_MAX_FEEDRATE", "Z_JERK", "Z_MAX_ACCEL", "estimate_time"]

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
