"""Speed and memory of the backbone boundary: embedding throughput and the row cache.

Two measurements, each configuration in its own subprocess (a fresh interpreter, so
the peak-memory counter and the embedding cache start clean):

* **Throughput.** ``SkorchEmbedder(net, frozen=True, cache=False).transform(X)`` on
  ``n`` procedural dSprites images (1 × 64 × 64, float32) through an untrained
  :class:`~midlogit.backbones.ConvNet` (the forward cost does not depend on the
  weights), at batch sizes 64, 256 and 1024. Rows per second are the median over
  ``--repeats`` timed passes after one warm-up pass. Peak memory is the resident set's
  high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs`` before the timed
  passes) minus the resident set before them: what the forward passes allocate beyond
  the inputs (activations of one batch, the output arrays). The same process also
  times the cache's own work on a miss: the 64-bit row hashes of all rows and the
  fingerprint of the weights.
* **Grid search.** ``GridSearchCV`` with a 3 × 3 grid (``band_width`` in 0.2, 0.4, 0.6;
  ``n_clusters`` in 2, 4, 8) and 3 stratified folds over
  ``make_midlogit_pipeline(net)``, with a ConvNet trained for a few epochs on biased
  dSprites (training not timed). With the cache, each distinct row goes through the
  backbone once; the named baseline is the same search with
  ``skorchembedder__cache=False``, where every fit and every score runs the backbone.
  Reported: rows pushed through the backbone (``cache_info()["rows_computed"]``),
  the time spent in the embedder (hashing, lookups and forward passes) and the
  search's wall time. Torch and BLAS run one thread each here (two threads on a
  shared 2-core machine are slower, see the throughput table).

Throughput is measured with 2 torch threads (the default on 2 cores) and with 1; the
grid search uses the default. The machine's load average is recorded with every
number: this workplace shares its 2 cores with other jobs, which slows torch down.

Run: ``python benchmarks/bench_backbones.py`` (a few minutes on 2 cores), ``--quick``
for a smoke run. Writes ``benchmarks/results/backbones.md`` and ``backbones.json``.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from peak_memory import PeakGrowth

RESULTS = Path(__file__).parent / "results"
BATCH_SIZES = (64, 256, 1024)
GRID = {
    "logitbandselector__band_width": [0.2, 0.4, 0.6],
    "embeddingclusterer__n_clusters": [2, 4, 8],
}


def measure_throughput(n, batch_size, threads, repeats, seed):
    import torch

    torch.set_num_threads(threads)
    from midlogit.backbones import ConvNet, SkorchEmbedder, _net_key, _row_keys, make_net
    from midlogit.datasets import make_dsprites

    X = make_dsprites(n, image_size=64, random_state=seed).data
    net = make_net(ConvNet(), random_state=seed, reset_parameters=True, verbose=0).initialize()
    embedder = SkorchEmbedder(net, frozen=True, batch_size=batch_size, cache=False)
    embedder.transform(X[:batch_size])  # warm-up: torch's lazy initialisation
    load = [os.getloadavg()[0]]
    seconds = []
    with PeakGrowth() as peak:
        for _ in range(repeats):
            start = time.perf_counter()
            E = embedder.transform(X)
            seconds.append(time.perf_counter() - start)
    extra_mb = peak.mb
    hash_s, key_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        _row_keys(X)
        hash_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        _net_key(net.module_, ("dense", True), X.shape[1:], net.device)
        key_s.append(time.perf_counter() - start)
    load.append(os.getloadavg()[0])
    median = float(np.median(seconds))
    return {
        "n": n,
        "batch_size": batch_size,
        "seconds": seconds,
        "median_s": median,
        "rows_per_s": n / median,
        "extra_mb": extra_mb,
        "input_mb": X.nbytes / 2**20,
        "embedding_shape": list(E.shape),
        "row_hash_s": float(np.median(hash_s)),
        "weights_key_s": float(np.median(key_s)),
        "n_parameters": sum(p.numel() for p in net.module_.parameters()),
        "torch_threads": torch.get_num_threads(),
        "load": max(load),
    }


def measure_search(n, epochs, cache, threads, seed):
    import torch
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    from midlogit.backbones import (
        ConvNet,
        cache_info,
        clear_cache,
        make_net,
    )
    from midlogit.datasets import make_biased_dsprites
    from midlogit.recipes import make_midlogit_pipeline

    data = make_biased_dsprites(n, bias=0.9, image_size=64, random_state=seed)
    X, y = data.data, data.target
    net = make_net(
        ConvNet(),
        max_epochs=epochs,
        batch_size=128,
        random_state=seed,
        reset_parameters=True,
        verbose=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net.fit(X, y)
    pipe = make_midlogit_pipeline(net, random_state=seed)
    pipe.set_params(skorchembedder__cache=cache)
    embedder = pipe.named_steps["skorchembedder"]
    backbone = []

    def timed_embed(X, _embed=embedder.embed):
        start = time.perf_counter()
        result = _embed(X)
        backbone.append(time.perf_counter() - start)
        return result

    embedder.embed = timed_embed  # a frozen embedder is shared by every clone
    search = GridSearchCV(pipe, GRID, cv=StratifiedKFold(3, shuffle=True, random_state=seed))
    clear_cache()
    load = [os.getloadavg()[0]]
    start = time.perf_counter()
    with threadpool_limits(threads):
        search.fit(X, y)
    seconds = time.perf_counter() - start
    load.append(os.getloadavg()[0])
    info = cache_info()
    return {
        "n": n,
        "cache": cache,
        "seconds": seconds,
        "backbone_seconds": sum(backbone),
        "embed_calls": len(backbone),
        "rows_computed": info["rows_computed"],
        "rows_reused": info["rows_reused"],
        "cache_mb": info["n_bytes"] / 2**20,
        "distinct_rows": int(np.unique(X.reshape(n, -1), axis=0).shape[0]),
        "best_params": search.best_params_,
        "torch_threads": torch.get_num_threads(),
        "load": max(load),
    }


def run_worker(spec, timeout=3600):
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"worker {spec} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine_info():
    import sklearn
    import skorch
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def report(results):
    machine = results["machine"]
    lines = [
        "# Backbone benchmark: embedding throughput and the row cache",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, "
        f"torch {machine['torch']}, skorch {machine['skorch']}, scikit-learn "
        f"{machine['scikit-learn']}, NumPy {machine['numpy']}. Shared machine: the load "
        "average (1 min) during each measurement is listed; 2.0 would mean both cores "
        "busy with this benchmark alone.",
        "Produced by `python benchmarks/bench_backbones.py"
        + (" --quick" if results["quick"] else "")
        + "`.",
        "",
        "## Throughput of `SkorchEmbedder.transform` (ConvNet, 1 × 64 × 64, CPU)",
        "",
    ]
    first = results["throughput"][0]
    lines += [
        f"{first['n']} dSprites images ({first['input_mb']:.0f} MB float32), ConvNet with "
        f"default widths ({first['n_parameters']:,} parameters, embedding "
        f"{first['embedding_shape'][1]}), cache off; median of {len(first['seconds'])} "
        "passes after a warm-up.",
        "",
        "| batch size | torch threads | median s | rows/s | peak extra memory (MB) | load |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["throughput"]:
        lines.append(
            f"| {row['batch_size']} | {row['torch_threads']} | {row['median_s']:.2f} | "
            f"{row['rows_per_s']:,.0f} | {row['extra_mb']:.0f} | {row['load']:.1f} |"
        )
    hash_s = np.median([row["row_hash_s"] for row in results["throughput"]])
    key_s = np.median([row["weights_key_s"] for row in results["throughput"]])
    best = max(results["throughput"], key=lambda row: row["rows_per_s"])
    by_threads = {
        threads: max(
            row["rows_per_s"] for row in results["throughput"] if row["torch_threads"] == threads
        )
        for threads in sorted({row["torch_threads"] for row in results["throughput"]})
    }
    lines += [
        "",
        f"The cache's own work on a miss: hashing all {first['n']} rows takes "
        f"{hash_s:.3f} s ({first['n'] / hash_s:,.0f} rows/s, "
        f"{hash_s / best['median_s']:.1%} of the fastest forward pass above); "
        f"fingerprinting the weights takes {key_s * 1000:.1f} ms per call. Best rows/s "
        "by torch threads: " + ", ".join(f"{t}: {r:,.0f}" for t, r in by_threads.items()) + ".",
        "",
        "## 3 × 3 grid search, 3 folds, over `make_midlogit_pipeline(net)`",
        "",
    ]
    searches = {row["cache"]: row for row in results["search"]}
    on, off = searches[True], searches[False]
    lines += [
        f"{on['n']} biased dSprites images (1 × 64 × 64, {on['distinct_rows']} distinct), "
        f"ConvNet trained {results['epochs']} epochs (not timed); grid "
        f"`band_width` × `n_clusters` = {GRID['logitbandselector__band_width']} × "
        f"{GRID['embeddingclusterer__n_clusters']}; baseline: the same search with "
        "`skorchembedder__cache=False`.",
        "",
        "| cache | rows through the backbone | rows from the cache | embedder time (s) "
        "| search wall time (s) | load |",
        "|---|---|---|---|---|---|",
    ]
    for row in (off, on):
        lines.append(
            f"| {'on' if row['cache'] else 'off (baseline)'} | {row['rows_computed']:,} | "
            f"{row['rows_reused']:,} | {row['backbone_seconds']:.1f} | {row['seconds']:.1f} "
            f"| {row['load']:.1f} |"
        )
    lines += [
        "",
        f"With the cache the backbone computes "
        f"{off['rows_computed'] / on['rows_computed']:.0f}× fewer rows (one pass per "
        f"distinct row, over {on['embed_calls']} embedder calls), the time in the "
        f"embedder drops {off['backbone_seconds'] / on['backbone_seconds']:.0f}× and the "
        f"search's wall time {off['seconds'] / on['seconds']:.1f}× "
        f"({on['cache_mb']:.1f} MB cached). The rest of the wall time is the selection, "
        "clustering and logistic regressions of the 28 pipeline fits.",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, smoke run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        kind = spec.pop("kind")
        result = measure_throughput(**spec) if kind == "throughput" else measure_search(**spec)
        print(json.dumps(result))
        return

    n_embed, n_search, epochs = (512, 300, 1) if args.quick else (4096, 1500, 3)
    repeats = 2 if args.quick else args.repeats
    results = {
        "machine": machine_info(),
        "quick": args.quick,
        "epochs": epochs,
        "throughput": [],
        "search": [],
    }
    for threads in (2, 1):
        for batch_size in BATCH_SIZES:
            row = run_worker(
                {
                    "kind": "throughput",
                    "n": n_embed,
                    "batch_size": batch_size,
                    "threads": threads,
                    "repeats": repeats,
                    "seed": args.seed,
                }
            )
            print(
                f"batch {batch_size}, {threads} threads: {row['rows_per_s']:,.0f} rows/s, "
                f"{row['extra_mb']:.0f} MB",
                flush=True,
            )
            results["throughput"].append(row)
    for cache in (False, True):
        row = run_worker(
            {
                "kind": "search",
                "n": n_search,
                "epochs": epochs,
                "cache": cache,
                "threads": 1,
                "seed": args.seed,
            }
        )
        print(
            f"grid search, cache={cache}: {row['rows_computed']:,} rows, {row['seconds']:.1f} s",
            flush=True,
        )
        results["search"].append(row)
    text = report(results)
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "backbones.md").write_text(text)
        (args.out / "backbones.json").write_text(json.dumps(results, indent=2))
    print(text)


if __name__ == "__main__":
    main()
