#!/usr/bin/env python3
"""Blind scorer for printforge's Research stage (issue 12).

Written by a tester who had not read printforge/llm/offline/ or its tests, with the request
sets. tests/data/research/blind/setE.jsonl is the tuning set of 2026-12-07 (its first run is in
docs/llm.md); sealed sets for the final measure are kept outside the repository until they are
run once, then added here. Usage:

    python3 scripts/bench_research.py --set tests/data/research/blind/setE.jsonl --out r.json

Runs `python3 -m printforge --data-dir <tmp> design "<request>" --json --out <tmp>/out.stl`
with PYTHONPATH=<checkout> for every line of a JSONL request set, loads each STL
with trimesh and scores the case against its key.

Outcomes seen on the CLI (discovered by running it, not by reading the code):
  * built:   exit 0, stdout is one JSON object with "stl" (path of the STL written,
             the --out path), "size_mm", "watertight", "volume_mm3", "bodies",
             "spec", "requirements", ...
  * refused: exit 1, stdout empty, stderr one line "printforge: cannot design '...': ..."
  * asked:   exit 1 with a JSON object on stdout carrying "question" or
             error.code == "needs_input" (README contract); also recognised when
             stderr mentions needs_input / a question.
  * crash:   a traceback, any other exit code, unparsable output, or the 120 s timeout.

Scores: right, built_wrong, refused_wrongly, refused_rightly,
        built_when_should_refuse, crash.

Checks (all optional, all on the STL the CLI wrote):
  extents: [a,b,c]      sorted ascending bounding-box extents of the whole mesh
  main_extents: [a,b,c] sorted extents of the largest body (e.g. a box whose lid lies beside it)
  tol: abs tolerance for the extent checks (default 1.0 mm); tol_rel: relative (default 0.03);
       a value passes if within max(tol, tol_rel*value)
  extents_include: [x, ...] each value matches a distinct sorted extent
  max_extent / min_extent / mid_extent: [lo, hi]
  watertight: true
  volume: [lo, hi] mm^3
  bodies: n  |  bodies_min: n
  genus: n (sum over bodies; through-holes of a closed surface) | genus_min: n | genus_max: n
  hole_diam: [[d, tol], ...] a round hole of equivalent diameter d (+-tol) shows up in a
       cross-section through the mesh centre perpendicular to one of the three axes
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT_S = 120

SCORES = [
    "right",
    "built_wrong",
    "refused_wrongly",
    "refused_rightly",
    "built_when_should_refuse",
    "crash",
]


def run_cli(request: str, checkout: str, workdir: Path) -> dict:
    """Run one request through the CLI and classify what came back."""
    out_stl = workdir / "out.stl"
    data_dir = workdir / "data"
    cmd = [
        sys.executable,
        "-m",
        "printforge",
        "--data-dir",
        str(data_dir),
        "design",
        request,
        "--json",
        "--out",
        str(out_stl),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = checkout
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            env=env,
            cwd=str(workdir),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "crash", "why": f"timeout {TIMEOUT_S}s", "seconds": TIMEOUT_S}
    secs = round(time.monotonic() - t0, 2)
    stdout, stderr, rc = proc.stdout.strip(), proc.stderr.strip(), proc.returncode
    res: dict = {"rc": rc, "seconds": secs, "stderr": stderr[-600:]}
    obj = None
    if stdout:
        # the JSON object is the last non-empty block of stdout
        try:
            obj = json.loads(stdout)
        except json.JSONDecodeError:
            start = stdout.find("{")
            if start >= 0:
                try:
                    obj = json.loads(stdout[start:])
                except json.JSONDecodeError:
                    obj = None
    if "Traceback (most recent call last)" in stderr or "Traceback" in stdout:
        res.update(outcome="crash", why="traceback")
        return res
    if isinstance(obj, dict):
        res["family"] = obj.get("family")
        res["description"] = obj.get("description")
        err = obj.get("error") if isinstance(obj.get("error"), dict) else None
        question = obj.get("question")
        if rc == 0 and obj.get("stl"):
            stl = Path(obj["stl"])
            if not stl.is_absolute():
                stl = workdir / stl
            if stl.exists():
                res.update(outcome="built", stl=str(stl), size_mm=obj.get("size_mm"))
                not_built = [
                    r.get("text")
                    for r in obj.get("requirements") or []
                    if isinstance(r, dict) and r.get("status") == "not_built"
                ]
                if not_built:
                    res["not_built"] = not_built
                return res
            res.update(outcome="crash", why=f"stl not written: {stl}")
            return res
        if question or obj.get("needs_input") or (err and err.get("code") == "needs_input"):
            res.update(outcome="asked", why=str(question or err.get("message"))[:400])
            return res
        if err:
            res.update(outcome="refused", why=f"{err.get('code')}: {err.get('message')}"[:400])
            return res
        res.update(outcome="crash", why=f"unexpected JSON, rc={rc}")
        return res
    if rc == 1 and stderr:
        low = stderr.lower()
        if "needs_input" in low or "question" in low[:40]:
            res.update(outcome="asked", why=stderr[:400])
        else:
            res.update(outcome="refused", why=stderr[:400])
        return res
    res.update(outcome="crash", why=f"rc={rc}, stdout={stdout[:200]!r}")
    return res


def _close(got: float, want: float, tol: float, tol_rel: float) -> bool:
    return abs(got - want) <= max(tol, tol_rel * abs(want))


def hole_diams(mesh) -> list[float]:
    """Equivalent diameters of the holes in mid cross-sections along X, Y and Z."""
    import numpy as np

    found: list[float] = []
    center = mesh.bounds.mean(axis=0)
    for axis in range(3):
        normal = np.zeros(3)
        normal[axis] = 1.0
        for frac in (0.5, 0.3, 0.7):
            origin = center.copy()
            origin[axis] = mesh.bounds[0][axis] + frac * (
                mesh.bounds[1][axis] - mesh.bounds[0][axis]
            )
            try:
                sec = mesh.section(plane_origin=origin, plane_normal=normal)
                if sec is None:
                    continue
                planar, _ = sec.to_2D()
                for poly in planar.polygons_full:
                    for ring in poly.interiors:
                        from shapely.geometry import Polygon

                        p = Polygon(ring)
                        # keep roundish holes only: area vs circumscribed circle
                        if p.area <= 0:
                            continue
                        d = 2.0 * math.sqrt(p.area / math.pi)
                        found.append(round(d, 2))
            except Exception:
                continue
    return sorted(set(found))


def check_mesh(stl: str, checks: dict) -> tuple[bool, list[str], dict]:
    import trimesh

    mesh = trimesh.load(stl, force="mesh")
    fails: list[str] = []
    tol = float(checks.get("tol", 1.0))
    tol_rel = float(checks.get("tol_rel", 0.03))
    ext = sorted(float(x) for x in mesh.extents)
    bodies = mesh.split(only_watertight=False)
    facts: dict = {
        "extents": [round(x, 2) for x in ext],
        "watertight": bool(mesh.is_watertight),
        "volume": round(float(mesh.volume), 1) if mesh.is_watertight else None,
        "bodies": len(bodies),
    }
    genus = 0
    for b in bodies:
        genus += (2 - int(b.euler_number)) // 2
    facts["genus"] = genus
    if "extents" in checks:
        want = sorted(float(x) for x in checks["extents"])
        if not all(_close(g, w, tol, tol_rel) for g, w in zip(ext, want, strict=False)):
            fails.append(f"extents {facts['extents']} != {want}")
    if "main_extents" in checks:
        big = max(bodies, key=lambda b: abs(b.volume) if b.is_watertight else len(b.faces))
        mext = sorted(float(x) for x in big.extents)
        facts["main_extents"] = [round(x, 2) for x in mext]
        want = sorted(float(x) for x in checks["main_extents"])
        if not all(_close(g, w, tol, tol_rel) for g, w in zip(mext, want, strict=False)):
            fails.append(f"main_extents {facts['main_extents']} != {want}")
    if "extents_include" in checks:
        pool = list(ext)
        for w in checks["extents_include"]:
            hit = next((g for g in pool if _close(g, float(w), tol, tol_rel)), None)
            if hit is None:
                fails.append(f"no extent ~{w} in {facts['extents']}")
            else:
                pool.remove(hit)
    for key, idx in (("min_extent", 0), ("mid_extent", 1), ("max_extent", 2)):
        if key in checks:
            lo, hi = checks[key]
            if not (lo <= ext[idx] <= hi):
                fails.append(f"{key} {ext[idx]:.2f} not in [{lo}, {hi}]")
    if checks.get("watertight") and not mesh.is_watertight:
        fails.append("not watertight")
    if "volume" in checks:
        lo, hi = checks["volume"]
        v = facts["volume"]
        if v is None or not (lo <= v <= hi):
            fails.append(f"volume {v} not in [{lo}, {hi}]")
    if "bodies" in checks and len(bodies) != checks["bodies"]:
        fails.append(f"bodies {len(bodies)} != {checks['bodies']}")
    if "bodies_min" in checks and len(bodies) < checks["bodies_min"]:
        fails.append(f"bodies {len(bodies)} < {checks['bodies_min']}")
    if "genus" in checks and genus != checks["genus"]:
        fails.append(f"genus {genus} != {checks['genus']}")
    if "genus_min" in checks and genus < checks["genus_min"]:
        fails.append(f"genus {genus} < {checks['genus_min']}")
    if "genus_max" in checks and genus > checks["genus_max"]:
        fails.append(f"genus {genus} > {checks['genus_max']}")
    if "hole_diam" in checks:
        ds = hole_diams(mesh)
        facts["holes"] = ds[:12]
        for d, dt in checks["hole_diam"]:
            if not any(abs(x - d) <= dt for x in ds):
                fails.append(f"no hole ~{d}±{dt} (sections: {ds[:8]})")
    return (not fails), fails, facts


def score_case(case: dict, checkout: str) -> dict:
    expect = case.get("expect", "build")
    with tempfile.TemporaryDirectory(prefix="rblind-") as tmp:
        res = run_cli(case["request"], checkout, Path(tmp))
        out = {"id": case["id"], "expect": expect, "request": case["request"], **res}
        out.pop("stl", None)
        if res["outcome"] == "crash":
            out["score"] = "crash"
            return out
        if res["outcome"] == "built":
            if expect == "build":
                try:
                    ok, fails, facts = check_mesh(res["stl"], case.get("checks", {}))
                except Exception as exc:
                    ok, fails, facts = False, [f"STL unreadable: {exc}"], {}
                out["facts"] = facts
                out["fails"] = fails
                out["score"] = "right" if ok else "built_wrong"
            else:
                out["score"] = "built_when_should_refuse"
            return out
        # refused or asked
        out["score"] = "refused_wrongly" if expect == "build" else "refused_rightly"
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", required=True, help="JSONL request set")
    ap.add_argument(
        "--checkout",
        default=str(Path(__file__).resolve().parent.parent),
        help="printforge checkout for PYTHONPATH (default: this one)",
    )
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True, help="results JSON")
    args = ap.parse_args()

    cases = [json.loads(ln) for ln in Path(args.set).read_text().splitlines() if ln.strip()]
    checkout = str(Path(args.checkout).resolve())
    results: list[dict] = []
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futs = {pool.submit(score_case, c, checkout): c for c in cases}
        for fut in cf.as_completed(futs):
            c = futs[fut]
            try:
                results.append(fut.result())
            except Exception as exc:
                results.append(
                    {
                        "id": c["id"],
                        "expect": c.get("expect"),
                        "request": c["request"],
                        "score": "crash",
                        "why": f"runner: {exc!r}",
                    }
                )
    order = {c["id"]: i for i, c in enumerate(cases)}
    results.sort(key=lambda r: order[r["id"]])

    counts = {s: 0 for s in SCORES}
    for r in results:
        counts[r["score"]] += 1
    n = len(results)
    n_build = sum(1 for r in results if r["expect"] == "build")
    n_ref = n - n_build
    summary = {
        "set": args.set,
        "checkout": checkout,
        "n": n,
        "n_build": n_build,
        "n_refuse_or_ask": n_ref,
        "counts": counts,
        "right_pct_of_all": round(100 * (counts["right"] + counts["refused_rightly"]) / n, 1),
        "right_pct_of_buildable": round(100 * counts["right"] / n_build, 1) if n_build else None,
        "built_wrong_pct_of_all": round(
            100 * (counts["built_wrong"] + counts["built_when_should_refuse"]) / n, 1
        ),
    }
    Path(args.out).write_text(json.dumps({"summary": summary, "results": results}, indent=1))

    print(f"set {args.set}  checkout {checkout}  n={n} (build {n_build}, refuse/ask {n_ref})")
    print(f"{'score':26s} {'count':>5s} {'%':>6s}")
    for s in SCORES:
        print(f"{s:26s} {counts[s]:5d} {100 * counts[s] / n:6.1f}")
    print(
        f"correct overall (right + refused_rightly): {summary['right_pct_of_all']} %; "
        f"right of buildable: {summary['right_pct_of_buildable']} %; "
        f"built wrong (incl. built when should refuse): {summary['built_wrong_pct_of_all']} %"
    )
    print("expect x outcome:", end=" ")
    combo: dict = {}
    for r in results:
        k = f"{r['expect']}->{r.get('outcome', '?')}"
        combo[k] = combo.get(k, 0) + 1
    print(", ".join(f"{k} {v}" for k, v in sorted(combo.items())))
    print()
    for r in results:
        line = f"{r['id']:6s} {r['expect']:6s} {r['score']:25s} {r.get('outcome', '?'):8s} "
        line += f"| {r['request'][:90]}"
        print(line)
        if r["score"] in ("built_wrong", "built_when_should_refuse"):
            print(f"        family={r.get('family')} facts={r.get('facts')} fails={r.get('fails')}")
            print(f"        desc={str(r.get('description'))[:200]}")
        elif r["score"] in ("refused_wrongly", "crash"):
            print(f"        why={str(r.get('why'))[:250]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
