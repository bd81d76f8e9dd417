"""Speed benchmark of INVERT (``midlogit.invert.ConceptLabeler``) at ImageNet scale.

Data (synthetic, made here; the sizes of INVERT's ImageNet setting): ``n`` samples, each
in one of ``classes`` classes, and ``hypernyms`` extra concepts that are unions of
classes, built bottom-up like a WordNet tree (each new node merges 2-4 current roots,
so every hypernym covers at least two classes and all supports differ). ``C`` is the
sample x (classes + hypernyms) indicator matrix (scipy CSR). Each of the ``units``
float32 units is standard normal noise plus ``2 * c_i + 1.5 * (c_j & ~c_k)`` for three
random concepts; every second unit is passed through a ReLU (many tied zeros).

Timed: ``ConceptLabeler(max_length=L, beam_size=B, n_jobs=...).fit(A, C)`` over the
whole layer, repeated; medians reported, with ``n_jobs=1`` and ``n_jobs=2``. Peak
memory is tracemalloc's peak over one extra fit (NumPy and SciPy arrays are traced).

Baseline: the published procedure written the straightforward way (as the public INVERT
code does it): every candidate formula is materialised as an indicator and scored with
``sklearn.metrics.roc_auc_score``, which re-sorts all ``n`` activations per candidate.
Like the public code it scores every candidate that is neither empty, everything, nor
equal to its parent, then keeps the admissible ones; the selection rules (tie-breaks,
one formula per support) are ours, so its explanations must equal ours exactly. It runs
on ``--baseline-units`` units (1 by default, about three minutes each at full size);
its time is per unit, single-threaded.

Run: ``python benchmarks/bench_invert.py`` (about 5 minutes on 2 cores), ``--quick`` for
a smoke run. Writes ``benchmarks/results/invert.md`` and ``invert.json``.
"""

import argparse
import json
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.metrics import roc_auc_score

from midlogit.invert import ConceptLabeler

RESULTS = Path(__file__).parent / "results"


def make_layer(n, classes, hypernyms, units, seed=0):
    """Concept matrix (CSR, bool) with a class partition plus hypernyms, and units."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    members = [np.array([c]) for c in range(classes)]
    roots = list(range(classes))
    for _ in range(hypernyms):
        k = min(int(rng.integers(2, 5)), len(roots))
        picked = set(rng.choice(len(roots), size=k, replace=False).tolist())
        members.append(np.unique(np.concatenate([members[roots[i]] for i in picked])))
        roots = [r for i, r in enumerate(roots) if i not in picked] + [len(members) - 1]
    K = len(members)
    incidence = np.zeros((classes, K), dtype=bool)
    for j, cls in enumerate(members):
        incidence[cls, j] = True
    dense = incidence[y]
    A = rng.normal(size=(n, units)).astype(np.float32)
    for u in range(units):
        i, j, k = rng.choice(K, size=3, replace=False)
        A[:, u] += 2 * dense[:, i] + 1.5 * (dense[:, j] & ~dense[:, k])
        if u % 2:
            np.maximum(A[:, u], 0, out=A[:, u])
    return A, sp.csr_array(dense), dense


def straightforward_invert(a, C, *, L, B, min_fraction=0.0, max_fraction=0.5):
    """The published beam search, scoring each candidate with roc_auc_score.

    Returns the explanations as ``(formula string, auc)`` and the number of scored
    candidates.
    """
    n, K = C.shape
    lits = [C[:, j] for j in range(K)] + [~C[:, j] for j in range(K)]
    scored = 0

    def candidate(ind, length, desc, parent=None, lit=None):
        nonlocal scored
        n1 = int(ind.sum())
        if n1 in (0, n) or (parent is not None and np.array_equal(ind, parent)):
            return None
        auc = roc_auc_score(ind, a)
        scored += 1
        if lit is not None and np.array_equal(ind, lit):
            return None  # our rule: a shorter formula has this support
        if not min_fraction <= n1 / n <= max_fraction:
            return None
        return (auc, length, desc, ind)

    def select(cands):
        order = sorted(range(len(cands)), key=lambda i: (-cands[i][0], cands[i][1], i))
        pool, seen = [], set()
        for i in order:
            key = np.packbits(cands[i][3]).tobytes()
            if key not in seen:
                seen.add(key)
                pool.append(cands[i])
            if len(pool) == B:
                break
        return pool

    atoms = [candidate(ind, 1, ((j,), ())) for j, ind in enumerate(lits)]
    atoms = [c for c in atoms if c is not None]
    pool = select(atoms)
    for _ in range(2, L + 1):
        cands = list(pool) + atoms
        for _, length, (ls, ops), f in pool:
            for op in "&|":
                for j, lit in enumerate(lits):
                    ind = (f & lit) if op == "&" else (f | lit)
                    c = candidate(ind, length + 1, (ls + (j,), ops + (op,)), f, lit)
                    if c is not None:
                        cands.append(c)
        new = select(cands)
        done = [c[2] for c in new] == [c[2] for c in pool]
        pool = new
        if done:
            break
    return [(describe(desc, K), auc) for auc, _, desc, _ in pool], scored


def describe(desc, K):
    """The string our Formula gives for literal ids and operators."""
    from midlogit.invert import Formula

    lits, ops = desc
    return str(Formula(tuple((j % K, j >= K) for j in lits), ops))


def machine():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def time_fit(A, C, params, repeats):
    """Wall-clock and process CPU seconds of repeated fits."""
    times, cpu, lab = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        lab = ConceptLabeler(**params).fit(A, C)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return times, cpu, lab


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--hypernyms", type=int, default=473)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=3)
    parser.add_argument("--beam-size", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-units", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS / "invert.md")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.classes, args.hypernyms, args.units = 5000, 100, 47, 32
        args.repeats = 1
    info = machine()
    A, C, dense = make_layer(args.n, args.classes, args.hypernyms, args.units)
    K = C.shape[1]
    base = {"max_length": args.max_length, "beam_size": args.beam_size}
    print(f"n={args.n} K={K} units={args.units} nnz/row={C.nnz / args.n:.2f}", flush=True)

    runs, cpus = {}, {}
    for n_jobs in (1, 2):
        times, cpu, lab = time_fit(A, C, {**base, "n_jobs": n_jobs}, args.repeats)
        runs[n_jobs], cpus[n_jobs] = times, cpu
        print(f"n_jobs={n_jobs}: {[round(t, 2) for t in times]} s", flush=True)
    tracemalloc.start()
    ConceptLabeler(**base, n_jobs=2).fit(A, C)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    # exactness of the fast path against roc_auc_score on every reported formula
    worst = 0.0
    for u in range(0, args.units, max(1, args.units // 16)):
        for e in lab.explanations_[u]:
            ref = roc_auc_score(e.formula.evaluate(C), A[:, u])
            worst = max(worst, abs(ref - e.auc))

    base_rows = []
    for u in range(args.baseline_units):
        t, c = time.perf_counter(), time.process_time()
        ref, scored = straightforward_invert(
            A[:, u].astype(np.float64), dense, L=args.max_length, B=args.beam_size
        )
        dt, dc = time.perf_counter() - t, time.process_time() - c
        ours = [(str(e.formula), e.auc) for e in lab.explanations_[u]]
        same = [r[0] for r in ref] == [o[0] for o in ours]
        diff = max(abs(r[1] - o[1]) for r, o in zip(ref, ours)) if same else float("nan")
        base_rows.append(
            {
                "unit": u,
                "seconds": dt,
                "cpu_seconds": dc,
                "scored": scored,
                "same": same,
                "max_auc_diff": diff,
                "best": ours[0][0],
            }
        )
        print(f"baseline unit {u}: {dt:.1f} s, {scored} candidates, identical={same}", flush=True)

    med = {j: float(np.median(t)) for j, t in runs.items()}
    per_unit = {j: 1000 * m / args.units for j, m in med.items()}
    cpu_per_unit = 1000 * float(np.median(cpus[1])) / args.units
    base_s = float(np.median([r["seconds"] for r in base_rows]))
    base_cpu = float(np.median([r["cpu_seconds"] for r in base_rows]))
    result = {
        "sizes": {
            "n": args.n,
            "concepts": K,
            "units": args.units,
            "L": args.max_length,
            "B": args.beam_size,
            "nnz_per_row": C.nnz / args.n,
        },
        "machine": info,
        "fit_seconds": {str(j): t for j, t in runs.items()},
        "fit_cpu_seconds": {str(j): t for j, t in cpus.items()},
        "cpu_ms_per_unit_n_jobs_1": cpu_per_unit,
        "median_seconds": {str(j): m for j, m in med.items()},
        "ms_per_unit": {str(j): m for j, m in per_unit.items()},
        "peak_traced_mb": peak / 2**20,
        "input_mb": A.nbytes / 2**20,
        "max_abs_auc_diff_vs_roc_auc_score": worst,
        "baseline": base_rows,
        "speedup_vs_baseline": {str(j): 1000 * base_s / m for j, m in per_unit.items()},
        "cpu_speedup_vs_baseline": 1000 * base_cpu / cpu_per_unit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.write_text(report(result, args))
    print(args.out.read_text())


def report(r, args):
    s, m = r["sizes"], r["machine"]
    b = r["baseline"]
    lines = [
        "# INVERT speed benchmark",
        "",
        f"Written by `benchmarks/bench_invert.py{' --quick' if args.quick else ''}`.",
        "",
        f"- Sizes: n = {s['n']:,} samples, K = {s['concepts']:,} concepts "
        f"({args.classes} classes + {args.hypernyms} hypernyms, {s['nnz_per_row']:.2f} "
        f"concepts per sample), {s['units']} units (float32, half ReLU), L = {s['L']}, "
        f"B = {s['B']}, fraction in [0, 0.5].",
        f"- Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy "
        f"{m['numpy']}, SciPy {m['scipy']}, scikit-learn {m['sklearn']}; load average "
        f"at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])} (the "
        "machine is shared, so single runs vary).",
        "",
        "| ConceptLabeler | wall runs (s) | CPU runs (s) | median layer (s) | median ms / unit |",
        "|---|---|---|---|---|",
    ]
    for j in ("1", "2"):
        lines.append(
            f"| n_jobs={j} | {', '.join(f'{t:.2f}' for t in r['fit_seconds'][j])} | "
            f"{', '.join(f'{t:.2f}' for t in r['fit_cpu_seconds'][j])} | "
            f"{r['median_seconds'][j]:.2f} | {r['ms_per_unit'][j]:.1f} |"
        )
    lines += [
        "",
        f"- Peak traced memory during one fit (n_jobs=2): {r['peak_traced_mb']:.0f} MB "
        f"(the activations themselves: {r['input_mb']:.0f} MB).",
        "- Largest |AUC - roc_auc_score| over the explanations of every "
        f"{max(1, s['units'] // 16)}th unit: {r['max_abs_auc_diff_vs_roc_auc_score']:.1e}.",
        "",
        "Baseline: the published procedure, each candidate scored by `roc_auc_score` "
        "(re-sorting the activations), single-threaded, complete search on "
        f"{len(b)} unit(s):",
        "",
        "| unit | wall s | CPU s | candidates scored | same explanations | max AUC diff | best |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in b:
        lines.append(
            f"| {row['unit']} | {row['seconds']:.1f} | {row['cpu_seconds']:.1f} | "
            f"{row['scored']:,} | "
            f"{'yes' if row['same'] else 'NO'} | {row['max_auc_diff']:.1e} | "
            f"`{row['best']}` |"
        )
    sp1, sp2 = r["speedup_vs_baseline"]["1"], r["speedup_vs_baseline"]["2"]
    lines += [
        "",
        f"Speed-up per unit against the baseline (wall clock): {sp1:,.0f}x with n_jobs=1, "
        f"{sp2:,.0f}x with n_jobs=2. In CPU time, which a shared machine disturbs less: "
        f"{r['cpu_speedup_vs_baseline']:,.0f}x ({r['cpu_ms_per_unit_n_jobs_1']:.1f} CPU "
        "ms per unit with n_jobs=1).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
