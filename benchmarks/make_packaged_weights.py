"""Regenerate the pretrained sprite net shipped in ``midlogit/backbones/weights/``.

The demo's first run would otherwise spend about 4.5 minutes of its time pretraining
(``benchmarks/results/pretraining.md``). Pretraining is bit-for-bit reproducible from
its parameters on CPU, so the shipped file is what this script writes: it trains with
the demo's parameters into an empty cache and copies the result, or with ``--check``
compares the fresh weights with the shipped ones tensor by tensor.

Run: ``python benchmarks/make_packaged_weights.py [--check]`` (about 5 minutes on one
core).
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch

import midlogit.backbones._pretraining as pretraining
from midlogit.backbones import pretrained_sprite_net
from midlogit.experiments.demo import PRETRAINING

SHIPPED = Path(__file__).resolve().parent.parent / "midlogit" / "backbones" / "weights"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as cache:
        # hide the shipped copy, so the weights are trained rather than read from it
        pretraining._PACKAGED_WEIGHTS = Path(cache) / "nothing-shipped"
        module = pretrained_sprite_net(**PRETRAINING, cache_dir=cache, verbose=1)
        assert not module.pretraining_["loaded"], "trained, not read from the package"
        fresh = Path(module.pretraining_["path"])
        shipped = SHIPPED / fresh.name
        if args.check:
            a = torch.load(fresh, weights_only=True)["state_dict"]
            b = torch.load(shipped, weights_only=True)["state_dict"]
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            print(f"{shipped.name}: {'identical' if same else 'DIFFERENT'} weights")
            sys.exit(0 if same else 1)
        SHIPPED.mkdir(parents=True, exist_ok=True)
        for old in SHIPPED.glob("sprite_net-*.pt"):
            old.unlink()
        shutil.copyfile(fresh, shipped)
        print(f"wrote {shipped}")


if __name__ == "__main__":
    main()
