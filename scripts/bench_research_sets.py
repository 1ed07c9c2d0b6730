#!/usr/bin/env python3
"""Blind runner for printforge's Research stage (black box: the CLI only), for the request sets
in the `expect: {family, dims_mm, tolerance_mm}` format (setH and later, issue 12).

Written by the blind tester with setH (who had not read printforge/llm/offline/ or its tests);
kept here with one change by the research helper, marked in `open_bores`: a hole that is a
C-shaped bore (a cable clip, a pipe clamp) is found too, not only closed rings. Sets in the
older `checks` format (setE-G) are scored by scripts/bench_research.py.

usage: python3 scripts/bench_research_sets.py SET.jsonl [--repo CHECKOUT] [--jobs 2]
       [--out results_SET.jsonl]

Each request goes through `python3 -m printforge design REQ --json --data-dir TMP --out TMP/p.stl`
in a fresh temp data dir; a built STL is loaded with trimesh and measured against `expect`.

Outcomes:
  right                       built, family accepted, every dims_mm check within tolerance
  built_wrong                 a part was built but family or a dimension is wrong, or a part was
                              built where a refusal/question was expected (the worst case)
  refused_or_asked_correctly  refusal/question where one was expected
  refused_wrongly             refused or asked though the request is buildable
  error                       crash, timeout, unparsable output, unknown error code
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import trimesh

REFUSAL_CODES = {"invalid_input", "needs_input", "input", "refused", "unsupported"}


def run_cli(repo, request, timeout=300):
    with tempfile.TemporaryDirectory(prefix="blind2_") as d:
        out = os.path.join(d, "part.stl")
        env = dict(os.environ, PYTHONPATH=repo)
        t0 = time.time()
        try:
            p = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "printforge",
                    "design",
                    request,
                    "--json",
                    "--data-dir",
                    os.path.join(d, "data"),
                    "--out",
                    out,
                ],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"kind": "error", "why": "timeout"}, None, time.time() - t0
        dt = time.time() - t0
        obj = None
        for line in reversed(p.stdout.strip().splitlines() or [""]):
            line = line.strip()
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                    break
                except ValueError:
                    pass
        if obj is None:
            try:
                obj = json.loads(p.stdout)
            except ValueError:
                return (
                    {
                        "kind": "error",
                        "why": f"rc={p.returncode} no json; stderr={p.stderr[-400:]}",
                    },
                    None,
                    dt,
                )
        if obj.get("needs_input"):
            return {"kind": "asked", "why": obj.get("question", ""), "json": obj}, None, dt
        if "error" in obj:
            code = (obj["error"] or {}).get("code", "")
            msg = (obj["error"] or {}).get("message", "")
            if code in REFUSAL_CODES:
                return {"kind": "refused", "why": f"{code}: {msg}", "json": obj}, None, dt
            return {"kind": "error", "why": f"{code}: {msg}", "json": obj}, None, dt
        if p.returncode == 0 and os.path.exists(out):
            mesh = trimesh.load(out, force="mesh")
            return {"kind": "built", "json": obj}, mesh, dt
        return (
            {"kind": "error", "why": f"rc={p.returncode}; {p.stdout[-300:]} {p.stderr[-300:]}"},
            None,
            dt,
        )


def bodies(mesh):
    try:
        parts = mesh.split(only_watertight=False)
    except Exception:
        parts = []
    return [mesh] + [b for b in parts if len(b.faces) > 0]


def close(a, b, tol):
    return abs(a - b) <= tol


def ext_match(ext, want, tol):
    return all(close(a, b, tol) for a, b in zip(sorted(ext), sorted(want), strict=False))


FRACS = np.linspace(0.08, 0.92, 13)  # where sections are cut, as fractions of each extent


def hole_diams(mesh, fracs=FRACS):
    """Interior rings of sections along X, Y, Z: (axis, frac, [area-equivalent diameters])."""
    res = []
    lo, hi = mesh.bounds
    for ax in range(3):
        normal = np.zeros(3)
        normal[ax] = 1
        for f in fracs:
            origin = (lo + hi) / 2.0
            origin[ax] = lo[ax] + f * (hi[ax] - lo[ax])
            try:
                sec = mesh.section(plane_origin=origin, plane_normal=normal)
                if sec is None:
                    continue
                planar, _ = sec.to_2D() if hasattr(sec, "to_2D") else sec.to_planar()
                ds = []
                for poly in planar.polygons_full:
                    for ring in poly.interiors:
                        from shapely.geometry import Polygon

                        a = Polygon(ring).area
                        ds.append(2 * math.sqrt(a / math.pi))
                res.append((ax, float(f), ds))
            except Exception:
                continue
    return res


def open_bores(mesh, fracs=FRACS):
    """Diameters of round bores open on one side (a C-shaped cable clip or pipe clamp), which
    have no interior ring in any section: in each section, the largest circle inside the
    convex hull but outside the material, kept only when the material wraps it for more than
    half its circumference (so the part holds a rod of that size; a plain notch or the inside
    corner of an L is not wrapped that far). Added by the research helper (round eleven) after
    measuring the clip and clamp of setH; interior rings are still found by hole_diams."""
    from shapely import maximum_inscribed_circle
    from shapely.geometry import Point
    from shapely.ops import unary_union

    res = []
    lo, hi = mesh.bounds
    for ax in range(3):
        normal = np.zeros(3)
        normal[ax] = 1
        for f in fracs:
            origin = (lo + hi) / 2.0
            origin[ax] = lo[ax] + f * (hi[ax] - lo[ax])
            try:
                sec = mesh.section(plane_origin=origin, plane_normal=normal)
                if sec is None:
                    continue
                planar, _ = sec.to_2D() if hasattr(sec, "to_2D") else sec.to_planar()
                polys = list(planar.polygons_full)
                if not polys:
                    continue
                mat = unary_union(polys)
                bite = mat.convex_hull.difference(mat)
                for g in getattr(bite, "geoms", [bite]):
                    if g.is_empty or g.area < 1:
                        continue
                    line = maximum_inscribed_circle(g, tolerance=0.01)
                    c, r = Point(line.coords[0]), line.length
                    if r < 0.5:
                        continue
                    n = 72
                    wrapped = sum(
                        1
                        for k in range(n)
                        if mat.contains(
                            Point(
                                c.x + (r + 0.3) * math.cos(2 * math.pi * k / n),
                                c.y + (r + 0.3) * math.sin(2 * math.pi * k / n),
                            )
                        )
                    )
                    if wrapped / n > 0.5:
                        res.append(2 * r)
            except Exception:
                continue
    return res


def check(expect, info, mesh):
    fails = []
    fam = info["json"].get("family")
    want_fam = expect.get("family")
    if want_fam != "*" and fam not in want_fam:
        fails.append(f"family {fam} not in {want_fam}")
    if not info["json"].get("watertight", mesh.is_watertight):
        fails.append("not watertight")
    tol = expect.get("tolerance_mm", 0.5)
    dims = expect.get("dims_mm", {})
    bs = bodies(mesh)
    exts = [list(map(float, b.extents)) for b in bs]
    secs = None
    for key, v in dims.items():
        ok = True
        if key == "extents":
            ok = ext_match(exts[0], v, tol) or any(ext_match(e, v, tol) for e in exts[1:])
        elif key == "body_extents":
            ok = any(ext_match(e, v, tol) for e in exts)
        elif key == "footprint":
            w = sorted(v)
            ok = any(
                ext_match(sorted([e[i], e[j]]), w, tol)
                for e in exts
                for i in range(3)
                for j in range(i + 1, 3)
            )
        elif key == "min_footprint":
            w = sorted(v)
            ok = any(
                all(a >= b - tol for a, b in zip(sorted(e)[1:], w, strict=False)) for e in exts
            )
        elif key in ("has_extent", "height"):
            ok = any(close(x, v, tol) for e in exts for x in e)
        elif key == "max_extent":
            ok = close(max(exts[0]), v, tol) or any(close(max(e), v, tol) for e in exts[1:])
        elif key == "xy_between":
            ok = any(sum(1 for x in e if v[0] <= x <= v[1]) >= 2 for e in exts)
        elif key in ("hole", "holes_min"):
            if secs is None:
                secs = hole_diams(mesh)
            d = dims.get("hole")
            if key == "hole":
                ok = any(close(x, d, tol) for _, _, ds in secs for x in ds)
                if not ok:
                    ok = any(close(x, d, tol) for x in open_bores(mesh))
            else:
                ok = any(sum(1 for x in ds if close(x, d, tol)) >= v for _, _, ds in secs)
        elif key == "has_hole":
            nb = max(1, len(bs) - 1)
            try:
                genus = (2 * nb - mesh.euler_number) / 2
            except Exception:
                genus = 0
            if genus <= 0:
                if secs is None:
                    secs = hole_diams(mesh)
                ok = any(ds for _, _, ds in secs)
        elif key == "text":
            ok = v.lower() in json.dumps(info["json"].get("spec", {})).lower()
        else:
            fails.append(f"unknown check {key}")
            continue
        if not ok:
            if key in ("hole", "holes_min"):
                seen = sorted({round(x, 2) for _, _, ds in (secs or []) for x in ds})[:12]
                fails.append(f"{key}={v} not found (holes seen {seen})")
            else:
                shown = [[round(x, 2) for x in e] for e in exts[:4]]
                fails.append(f"{key}={v} not matched (extents {shown})")
    return fails


def classify(case, repo):
    exp = case["expect"]
    info, mesh, dt = run_cli(repo, case["request"])
    want_no_part = bool(exp.get("refuse") or exp.get("ask"))
    rec = {
        "id": case["id"],
        "request": case["request"],
        "expect": exp,
        "got": info["kind"],
        "seconds": round(dt, 2),
    }
    if info["kind"] == "error":
        rec.update(outcome="error", detail=info["why"])
    elif info["kind"] in ("refused", "asked"):
        rec.update(
            outcome="refused_or_asked_correctly" if want_no_part else "refused_wrongly",
            detail=info["why"][:500],
        )
    else:
        j = info["json"]
        rec["family"] = j.get("family")
        rec["size_mm"] = j.get("size_mm")
        rec["description"] = j.get("description", "")[:300]
        if want_no_part:
            rec.update(
                outcome="built_wrong", detail="built a part where a refusal/question was expected"
            )
        else:
            try:
                fails = check(exp, info, mesh)
            except Exception as e:  # runner fault, not the system's
                fails = [f"check crashed: {e!r}"]
            rec.update(outcome="right" if not fails else "built_wrong", detail="; ".join(fails))
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("set")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(a.set) as f:
        cases = [json.loads(line) for line in f if line.strip()]
    commit = subprocess.run(
        ["git", "-C", a.repo, "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with ThreadPoolExecutor(a.jobs) as ex:
        recs = list(ex.map(lambda c: classify(c, a.repo), cases))
    name = os.path.splitext(os.path.basename(a.set))[0]
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.set)), f"results_{name}.jsonl")
    with open(out, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    build = [r for r in recs if not (r["expect"].get("refuse") or r["expect"].get("ask"))]
    norefuse = [r for r in recs if r not in build]

    def cnt(rs, o):
        return sum(1 for r in rs if r["outcome"] == o)

    print(
        f"set {name}: {len(recs)} requests ({len(build)} buildable, {len(norefuse)} refuse/ask); "
        f"repo {a.repo} commit {commit}; {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC"
    )
    for r in recs:
        print(
            f"  {r['id']:4} {r['outcome']:27} {r['request'][:70]!r}"
            + (
                f"\n        -> {r.get('family', r['got'])}: {r.get('detail', '')[:300]}"
                if r["outcome"] != "right" and r["outcome"] != "refused_or_asked_correctly"
                else ""
            )
        )
    nb, nr, n = len(build), len(norefuse), len(recs)
    bw_b, bw_r = cnt(build, "built_wrong"), cnt(norefuse, "built_wrong")
    print("summary:")
    right = cnt(build, "right")
    print(f"  right of buildable:        {right}/{nb} = {100 * right / max(nb, 1):.1f} %")
    print(
        f"  built wrong (all):         {bw_b + bw_r}/{n} = {100 * (bw_b + bw_r) / n:.1f} %"
        f"  (wrong part {bw_b}, built where refuse/ask expected {bw_r})"
    )
    wrongly = cnt(build, "refused_wrongly")
    print(
        f"  refused/asked wrongly:     {wrongly}/{nb} = {100 * wrongly / max(nb, 1):.1f} %"
        " of buildable"
    )
    print(
        f"  correct refusals/asks:     {cnt(norefuse, 'refused_or_asked_correctly')}/{nr} = "
        f"{100 * cnt(norefuse, 'refused_or_asked_correctly') / max(nr, 1):.1f} %"
    )
    print(f"  errors:                    {cnt(recs, 'error')}")
    print(f"  results file: {out}")


if __name__ == "__main__":
    main()
