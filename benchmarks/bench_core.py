"""Speed and memory benchmark of band -> cluster -> retrain against the DFR recipe.

The data stand in for what a frozen backbone hands over: float32 embeddings
``E = noise + core * (2y - 1) u + spurious * (2a - 1) v`` with standard normal noise, two
random orthonormal directions ``u`` (the label) and ``v`` (a spurious attribute ``a``
that equals ``y`` on a fraction ``bias`` of the rows), and the logits of a linear head
(scikit-learn's ``LogisticRegression``) fitted on the first 5 000 rows, wrapped in
``FrozenEstimator``. Timed, on the same rows:

* **midlogit**: ``make_pipeline(LogitBandSelector(estimator=FrozenEstimator(head),
  band_width=0.4), EmbeddingClusterer(n_clusters=4), LastLayerRetrainer()).fit(E, y)``
  (no group labels);
* **DFR** (Kirichenko et al., ICLR 2023; see ``/work/shared/references.md``), written
  here with scikit-learn: standardise, L1 logistic regression (liblinear) for every C
  in {1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01} fitted on a group-balanced subsample of one
  half and scored by worst-group accuracy on the other half, then 20 fits with the
  chosen C on group-balanced subsamples of all rows, coefficients averaged (uses the
  group labels).

Each (method, size) runs in its own subprocess. Peak memory is the resident set's
high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` right before each
fit) minus the resident set just before the fit, so it counts every allocation the
fit makes (NumPy, liblinear's own copies, BLAS buffers) beyond the data already in
memory. It is reported in MB and relative to the embedding matrix. Worst-group and
mean accuracy are measured on a held-out unbiased split (``a`` independent of ``y``).

Run: ``python benchmarks/bench_core.py`` (about 20 minutes on 2 cores), ``--quick``
for a smoke run, ``--sizes 10000x512,100000x2048`` for chosen sizes.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn
from peak_memory import PeakGrowth
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from midlogit.clustering import EmbeddingClusterer
from midlogit.metrics import worst_group_accuracy
from midlogit.pipeline import make_pipeline
from midlogit.retraining import LastLayerRetrainer
from midlogit.selection import LogitBandSelector

RESULTS = Path(__file__).parent / "results"
FULL_SIZES = "10000x512,100000x512,1000000x512,100000x2048"
QUICK_SIZES = "2000x64,10000x128"
DFR_CS = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
DFR_REFITS = 20
BIAS = 0.95
CORE, SPURIOUS = 1.0, 2.0
HEAD_ROWS = 5000
TEST_ROWS = 20000
# Targets of the issue, checked at n=100k, d=2048.
TARGET_SIZE = (100_000, 2048)
TARGET_SECONDS = 30.0
TARGET_SPEEDUP = 5.0
TARGET_PEAK_RATIO = 3.0


# --- data -------------------------------------------------------------------------------
def make_embeddings(n, d, *, bias, seed, chunk=50_000):
    """Float32 embeddings with a label direction and a planted spurious direction.

    Returns ``E, y, groups`` with ``groups = 2 * y + a``. Built in chunks, so the
    peak while generating is the matrix plus one chunk.
    """
    directions = np.linalg.qr(np.random.default_rng(12345).standard_normal((d, 2)))[0].T
    u, v = directions.astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < bias, y, 1 - y)
    E = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = rng.standard_normal((stop - start, d), dtype=np.float32)
        block += np.float32(CORE) * (2 * y[start:stop, None] - 1).astype(np.float32) * u
        block += np.float32(SPURIOUS) * (2 * a[start:stop, None] - 1).astype(np.float32) * v
        E[start:stop] = block
    return E, y, 2 * y + a


def fit_head(E, y):
    """The ERM head the backbone would hand over, fitted on the first rows."""
    head = LogisticRegression(max_iter=1000).fit(E[:HEAD_ROWS], y[:HEAD_ROWS])
    return FrozenEstimator(head)


# --- the two methods ----------------------------------------------------------------------
def make_midlogit(head, seed):
    return make_pipeline(
        LogitBandSelector(estimator=head, band_width=0.4),
        EmbeddingClusterer(n_clusters=4, random_state=seed),
        LastLayerRetrainer(random_state=seed),
    )


def group_balanced(groups, rng):
    """Row indices with every group cut to the size of the smallest one."""
    order = rng.permutation(groups.size)
    shuffled = groups[order]
    counts = np.bincount(shuffled)
    present = np.flatnonzero(counts)
    size = counts[present].min()
    # rank of each row within its group, in shuffled order
    by_group = np.argsort(shuffled, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(groups.size, dtype=np.intp)
    rank[by_group] = np.arange(groups.size) - starts[shuffled[by_group]]
    return np.sort(order[rank < size])


class DFRHead:
    """The DFR recipe on embeddings, with scikit-learn (the named baseline).

    With ``progress=True`` every L1 fit prints a JSON line to stderr, so that a run
    stopped for time can be extrapolated.
    """

    def __init__(self, seed, progress=False):
        self.seed = seed
        self.progress = progress

    def _l1_fit(self, E, y, rows, C, seed, stage):
        model = LogisticRegression(l1_ratio=1.0, C=C, solver="liblinear", random_state=seed)
        start = time.perf_counter()
        model.fit(self.scaler_.transform(E[rows]), y[rows])
        if self.progress:
            record = {
                "stage": stage,
                "rows": int(rows.size),
                "seconds": time.perf_counter() - start,
                "elapsed": time.perf_counter() - self._start,
            }
            print(json.dumps(record), file=sys.stderr, flush=True)
        return model.coef_.ravel(), model.intercept_[0]

    def _scores(self, E, coef, intercept):
        # the standardisation folded into the weights: no standardised copy of E
        w = coef / self.scaler_.scale_
        b = intercept - w @ self.scaler_.mean_
        return E @ w.astype(E.dtype) + b

    def fit(self, E, y, groups):
        self._start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        self.scaler_ = StandardScaler().fit(E)
        # rows are i.i.d. by construction, so two contiguous halves are a random split
        half = E.shape[0] // 2
        tune, held = slice(0, half), slice(half, None)
        rows = group_balanced(groups[tune], rng)
        self.tuning_ = {}
        for C in DFR_CS:
            coef, intercept = self._l1_fit(E[tune], y[tune], rows, C, self.seed, "tune")
            pred = (self._scores(E[held], coef, intercept) > 0).astype(int)
            self.tuning_[C] = worst_group_accuracy(y[held], pred, groups=groups[held])
        self.C_ = max(DFR_CS, key=lambda C: self.tuning_[C])
        fits = [
            self._l1_fit(E, y, group_balanced(groups, rng), self.C_, self.seed + i, "refit")
            for i in range(DFR_REFITS)
        ]
        self.coef_ = np.mean([coef for coef, _ in fits], axis=0)
        self.intercept_ = float(np.mean([intercept for _, intercept in fits]))
        return self

    def predict(self, E):
        return (self._scores(E, self.coef_, self.intercept_) > 0).astype(int)


# --- measurement (runs in a subprocess) -----------------------------------------------------
def _timed_steps(pipe, log):
    """Record each step's fit time in ``log`` (instance attributes wrap the methods)."""
    for name, step in pipe.steps:
        method = "fit_resample" if hasattr(step, "fit_resample") else "fit"
        original = getattr(step, method)

        def wrapper(*args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            result = _original(*args, **kwargs)
            log[_name] = time.perf_counter() - start
            return result

        setattr(step, method, wrapper)


def measure(method, n, d, repeats, seed, budget):
    """Fit ``repeats`` times (fewer once the fits took ``budget`` seconds in all)."""
    E, y, groups = make_embeddings(n, d, bias=BIAS, seed=seed)
    head = fit_head(E, y) if method == "midlogit" else None
    runs = []
    while not runs or (len(runs) < repeats and sum(run["seconds"] for run in runs) < budget):
        steps = {}
        if method == "midlogit":
            model = make_midlogit(head, seed)
            _timed_steps(model, steps)
            fit_args = (E, y)
        else:
            model = DFRHead(seed, progress=True)
            fit_args = (E, y, groups)
        load = os.getloadavg()[0]
        with PeakGrowth() as peak:
            start, cpu_start = time.perf_counter(), time.process_time()
            model.fit(*fit_args)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        extra_mb = peak.mb
        runs.append(
            {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "extra_mb": extra_mb,
                "steps": steps,
                "load_before": load,
                "load_after": os.getloadavg()[0],
            }
        )
    result = {
        "method": method,
        "n": n,
        "d": d,
        "matrix_mb": E.nbytes / 2**20,
        "runs": runs,
        "midlogit_file": sys.modules["midlogit"].__file__,
    }
    if method == "midlogit":
        result["settings"] = {
            name: {
                key: value
                for key, value in step.get_params(deep=False).items()
                if key not in ("estimator", "clusterer")
            }
            for name, step in model.steps
        }
        band = model.named_steps["logitbandselector"].sample_indices_
        kept = band[model.named_steps["embeddingclusterer"].sample_indices_]
        minority = groups % 3 != 0  # label and spurious attribute disagree
        result.update(
            band_rows=int(band.size),
            retrain_rows=int(kept.size),
            minority_share={
                "data": float(minority.mean()),
                "band": float(minority[band].mean()),
                "retrain": float(minority[kept].mean()),
            },
        )
    else:
        result.update(C=model.C_, tuning=model.tuning_)
    del E, y, groups, fit_args
    E_test, y_test, g_test = make_embeddings(TEST_ROWS, d, bias=0.5, seed=seed + 1)
    scored = {method: model.predict(E_test)}
    if head is not None:
        scored["erm_head"] = head.predict(E_test)
    result["accuracy"] = {
        name: {
            "worst_group": worst_group_accuracy(y_test, pred, groups=g_test),
            "mean": float(np.mean(pred == y_test)),
        }
        for name, pred in scored.items()
    }
    return result


def run_worker(method, n, d, repeats, seed, budget, timeout, source=None):
    """Measure one configuration in a fresh interpreter.

    ``source`` is a folder holding the ``midlogit`` package to measure (``None``: the
    installed one). Returns the measurement, or ``{"stopped": progress}`` when it ran
    out of time (``progress`` holds the DFR fits that had finished).
    """
    spec = {"method": method, "n": n, "d": d, "repeats": repeats, "seed": seed, "budget": budget}
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])])
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        progress = []
        for line in stderr.splitlines():
            if line.startswith("{"):
                progress.append(json.loads(line))
        return {"stopped": progress}
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stderr)
        raise
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_source(choice, folder):
    """The folder whose ``midlogit`` package the workers import, and how to name it.

    ``"head"`` extracts the package as committed at ``HEAD`` into ``folder``, so that
    every size measures the same code even while the working tree changes;
    ``"worktree"`` uses the installed package; anything else is a folder holding a
    ``midlogit`` package (e.g. a patched copy).
    """
    repo = Path(__file__).resolve().parent.parent
    if choice == "worktree":
        return None, f"working tree {repo}"
    if choice != "head":
        folder = Path(choice).resolve()
        if not (folder / "midlogit" / "__init__.py").exists():
            raise SystemExit(f"--source {choice}: no midlogit package in that folder")
        return folder, f"copy in {folder}"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", "midlogit"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    archive_path = Path(folder) / "midlogit.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder, filter="data")
    return Path(folder), f"commit {commit}"


def extrapolate_dfr(progress):
    """Estimated DFR fit time from the fits finished before it was stopped.

    Each unfinished fit is assumed to take the mean time of the finished fits of its
    stage; an unfinished refit with no refit done takes twice a tuning fit (its
    subsample is twice as large).
    """
    # the records of the last fit only (elapsed restarts at every fit)
    restarts = [
        i for i in range(1, len(progress)) if progress[i]["elapsed"] < progress[i - 1]["elapsed"]
    ]
    progress = progress[restarts[-1] :] if restarts else progress
    done = {"tune": [], "refit": []}
    for record in progress:
        done[record["stage"]].append(record["seconds"])
    if not done["tune"]:
        return None
    tune = float(np.mean(done["tune"]))
    refit = float(np.mean(done["refit"])) if done["refit"] else 2 * tune
    remaining = (len(DFR_CS) - len(done["tune"])) * tune
    remaining += (DFR_REFITS - len(done["refit"])) * refit
    return progress[-1]["elapsed"] + remaining


# --- report -------------------------------------------------------------------------------
def machine_info():
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    blas = [
        f"{pool['internal_api']} {pool.get('version')} ({pool['num_threads']} threads)"
        for pool in threadpool_info()
        if pool["user_api"] == "blas"
    ]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "blas": sorted(set(blas)),
    }


def summary(result):
    runs = result["runs"]
    median = sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2]
    return {
        "median_s": float(np.median([run["seconds"] for run in runs])),
        "median_cpu_s": float(np.median([run["cpu_seconds"] for run in runs])),
        "runs": len(runs),
        "extra_mb": max(run["extra_mb"] for run in runs),
        "load": max(max(run["load_before"], run["load_after"]) for run in runs),
        "median_run": median,
    }


def _fmt_s(value):
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _peak_ratio(matrix_mb, extra_mb):
    return (matrix_mb + extra_mb) / matrix_mb


def write_report(results, info, out, args):
    by_key = {(r["method"], r["n"], r["d"]): r for r in results["measured"]}
    sizes = results["sizes"]
    settings = {
        json.dumps(r["settings"], sort_keys=True) for r in results["measured"] if "settings" in r
    }
    settings = (
        "; ".join(
            ", ".join(
                f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
                for name, params in json.loads(text).items()
            )
            for text in sorted(settings)
        )
        or "-"
    )
    lines = [
        "# Core speed and memory: band -> cluster -> retrain vs. DFR",
        "",
        f"Produced by `python benchmarks/bench_core.py{args}` on "
        f"{time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM; "
        f"Python {info['python']}, NumPy {info['numpy']}, scikit-learn "
        f"{info['scikit-learn']}, BLAS {', '.join(info['blas'])}.",
        "",
        f"midlogit measured: {results['source']}; step settings: {settings}.",
        "",
        f"Data: float32 Gaussian embeddings, label direction (strength {CORE}) and a "
        f"spurious direction (strength {SPURIOUS}) agreeing with the label on "
        f"{BIAS:.0%} of rows; logits from a LogisticRegression head fitted on the first "
        f"{HEAD_ROWS:,} rows (outside the timed region). Accuracy on {TEST_ROWS:,} held-out "
        "unbiased rows (spurious attribute independent of the label), groups = "
        "(label, attribute).",
        "",
        "Time: wall-clock (and process CPU) seconds of `fit`, median over the runs given "
        "(midlogit/DFR). Extra: peak resident set during `fit` minus the resident set "
        "before it (VmHWM reset through /proc/self/clear_refs; one subprocess per method "
        "and size; largest over the runs). Peak / E = (embedding matrix + extra) / "
        "embedding matrix. Load: highest 1-minute load average seen around the runs "
        "(the machine has 2 cores; above 2, other processes competed for them).",
        "",
        "| n | d | E (MB) | runs | midlogit s (CPU s) | DFR s (CPU s) | DFR / midlogit "
        "| midlogit extra MB (peak / E) | DFR extra MB (peak / E) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    stopped = {(r["method"], r["n"], r["d"]): r for r in results["stopped"]}
    for n, d in sizes:
        mid, dfr = by_key.get(("midlogit", n, d)), by_key.get(("dfr", n, d))
        matrix_mb = n * d * 4 / 2**20
        m = summary(mid) if mid else None
        f = summary(dfr) if dfr else None
        cells = [f"{n:,}", str(d), f"{matrix_mb:,.0f}"]
        cells.append("/".join(str(s["runs"]) if s else "-" for s in (m, f)))
        for method, s in (("midlogit", m), ("dfr", f)):
            if s:
                cells.append(f"{_fmt_s(s['median_s'])} ({_fmt_s(s['median_cpu_s'])})")
            elif (method, n, d) in stopped:
                stop = stopped[method, n, d]
                estimate = stop["extrapolated_s"]
                cells.append(
                    f"stopped at {stop['after_s']:.0f}"
                    + (f" (~{estimate:.0f} extrapolated)" if estimate else "")
                )
            else:
                cells.append("not run")
        if m and f:
            cells.append(f"{f['median_s'] / m['median_s']:.1f}x")
        elif m and stopped.get(("dfr", n, d), {}).get("extrapolated_s"):
            cells.append(f"~{stopped['dfr', n, d]['extrapolated_s'] / m['median_s']:.1f}x")
        else:
            cells.append("-")
        for s in (m, f):
            cells.append(
                f"{s['extra_mb']:,.0f} ({_peak_ratio(matrix_mb, s['extra_mb']):.2f})" if s else "-"
            )
        cells.append(f"{max(s['load'] for s in (m, f) if s):.1f}" if m or f else "-")
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "Where midlogit's time goes (wall seconds of each step in the median run) and the "
        "rows each step keeps; minority = rows whose spurious attribute disagrees with "
        "the label (share of the rows, %):",
        "",
        "| n | d | band | cluster | retrain | band rows | retrain rows "
        "| minority: data / band / retrain |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, d in sizes:
        mid = by_key.get(("midlogit", n, d))
        if not mid:
            continue
        steps = summary(mid)["median_run"]["steps"]
        share = mid["minority_share"]
        lines.append(
            f"| {n:,} | {d} | {_fmt_s(steps['logitbandselector'])} | "
            f"{_fmt_s(steps['embeddingclusterer'])} | {_fmt_s(steps['lastlayerretrainer'])} "
            f"| {mid['band_rows']:,} | {mid['retrain_rows']:,} | "
            f"{100 * share['data']:.1f} / {100 * share['band']:.1f} / "
            f"{100 * share['retrain']:.1f} |"
        )

    lines += [
        "",
        "Held-out unbiased accuracy (worst-group / mean, %). ERM head = the frozen head "
        "whose logits midlogit bands. midlogit uses no group labels; DFR trains on them.",
        "",
        "| n | d | ERM head | midlogit | DFR | DFR's C |",
        "|---:|---:|---:|---:|---:|---:|",
    ]

    def accuracy(result, name):
        if not result:
            return "-"
        scores = result["accuracy"][name]
        return f"{100 * scores['worst_group']:.1f} / {100 * scores['mean']:.1f}"

    for n, d in sizes:
        mid, dfr = by_key.get(("midlogit", n, d)), by_key.get(("dfr", n, d))
        lines.append(
            f"| {n:,} | {d} | {accuracy(mid, 'erm_head')} | {accuracy(mid, 'midlogit')} | "
            f"{accuracy(dfr, 'dfr')} | {dfr['C'] if dfr else '-'} |"
        )

    mid, dfr = by_key.get(("midlogit", *TARGET_SIZE)), by_key.get(("dfr", *TARGET_SIZE))
    if mid:
        m = summary(mid)
        peak = _peak_ratio(TARGET_SIZE[0] * TARGET_SIZE[1] * 4 / 2**20, m["extra_mb"])
        checks = [
            f"fit {m['median_s']:.1f} s (target < {TARGET_SECONDS:.0f} s): "
            f"{'met' if m['median_s'] < TARGET_SECONDS else 'NOT met'}",
            f"peak {peak:.2f} x E (target < {TARGET_PEAK_RATIO:.0f} x): "
            f"{'met' if peak < TARGET_PEAK_RATIO else 'NOT met'}",
        ]
        if dfr:
            ratio = summary(dfr)["median_s"] / m["median_s"]
            checks.append(
                f"{ratio:.1f}x faster than DFR (target >= {TARGET_SPEEDUP:.0f}x): "
                f"{'met' if ratio >= TARGET_SPEEDUP else 'NOT met'}"
            )
        lines += ["", f"Targets at n = {TARGET_SIZE[0]:,}, d = {TARGET_SIZE[1]}:", ""]
        lines += [f"- {check}" for check in checks]
    out.write_text("\n".join(lines) + "\n")


def parse_sizes(text):
    sizes = []
    for item in text.split(","):
        n, _, d = item.strip().lower().partition("x")
        if not (n.isdigit() and d.isdigit()):
            raise argparse.ArgumentTypeError(
                f"--sizes takes comma-separated NxD pairs such as 100000x2048, got {item!r}"
            )
        sizes.append((int(n), int(d)))
    return sizes


def run_all(args, sizes, source):
    """Run every (size, method) worker; return the measurements and stopped runs."""
    results = {"sizes": sizes, "measured": [], "stopped": []}
    methods = args.methods.split(",")
    for n, d in sizes:
        repeats = 1 if args.quick or n * d > args.single_run_above else args.repeats
        for method in methods:
            limit = args.dfr_timeout if method == "dfr" else args.midlogit_timeout
            # a run may start just before the budget is spent; data generation is extra
            timeout = limit + (args.budget if repeats > 1 else 0.0) + 120.0
            start = time.perf_counter()
            result = run_worker(method, n, d, repeats, args.seed, args.budget, timeout, source)
            wall = time.perf_counter() - start
            if "stopped" in result:
                estimate = extrapolate_dfr(result["stopped"]) if method == "dfr" else None
                results["stopped"].append(
                    {
                        "method": method,
                        "n": n,
                        "d": d,
                        "after_s": wall,
                        "progress": result["stopped"],
                        "extrapolated_s": estimate,
                    }
                )
                print(
                    f"{method:8s} n={n:>8,} d={d:>5}: stopped after {wall:.0f} s "
                    f"(extrapolated fit {estimate} s)",
                    flush=True,
                )
                continue
            if source is not None and not Path(result["midlogit_file"]).is_relative_to(source):
                raise RuntimeError(
                    f"the worker imported {result['midlogit_file']}, not the package in "
                    f"{source}; is midlogit installed in a way that overrides PYTHONPATH?"
                )
            results["measured"].append(result)
            s = summary(result)
            print(
                f"{method:8s} n={n:>8,} d={d:>5}: fit {s['median_s']:.2f} s "
                f"(median of {s['runs']}), extra {s['extra_mb']:,.0f} MB, "
                f"worker {wall:.0f} s",
                flush=True,
            )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=None,
        help=f"comma-separated NxD (default {FULL_SIZES})",
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run at {QUICK_SIZES}")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown report (default results/core.md, "
        "results/core_quick.md with --quick); raw numbers go beside it as .json",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per size; the median is reported"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=120.0,
        help="no further run of a size once its runs took this many seconds",
    )
    parser.add_argument(
        "--single-run-above",
        type=float,
        default=1e8,
        help="sizes with n*d above this are run once",
    )
    parser.add_argument("--methods", default="midlogit,dfr")
    parser.add_argument(
        "--dfr-timeout",
        type=float,
        default=600.0,
        help="seconds before a DFR run is stopped (its time is then "
        "extrapolated from the fits it finished)",
    )
    parser.add_argument(
        "--midlogit-timeout",
        type=float,
        default=1800.0,
        help="seconds before a midlogit run is stopped",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        default="head",
        help="midlogit to measure: 'head' (the package as committed, the "
        "default), 'worktree' (as installed) or a folder holding a "
        "midlogit package",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure(**spec)))
        return

    sizes = args.sizes or parse_sizes(QUICK_SIZES if args.quick else FULL_SIZES)
    out = args.out or RESULTS / ("core_quick.md" if args.quick else "core.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        source, source_name = prepare_source(args.source, folder)
        results = run_all(args, sizes, source)
    results["source"] = source_name
    info = machine_info()
    results["machine"] = info
    shown = " " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(results, info, out, shown.rstrip())
    out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
