"""The ``midlogit`` command line: ``demo``, ``label`` and ``bench``."""

import argparse
import runpy
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser():
    """The argument parser of the ``midlogit`` command.

    Returns
    -------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> from midlogit.cli import build_parser
    >>> build_parser().parse_args(["demo", "--bias", "0.9"]).bias
    0.9
    """
    from .demo import DATASETS

    parser = argparse.ArgumentParser(
        prog="midlogit",
        description="Find and remove the spurious shortcuts a trained network relies on.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="train an ERM backbone on built-in biased data and compare retrained heads",
    )
    demo.add_argument("--dataset", choices=DATASETS, default="dsprites")
    demo.add_argument(
        "--bias",
        type=float,
        default=0.95,
        help="shortcut strength of the training data (default 0.95)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default="midlogit-demo", help="output folder")
    demo.add_argument("--quick", action="store_true", help="small data, few epochs")
    demo.add_argument("--no-plots", action="store_true", help="skip the figures")
    demo.add_argument("--quiet", action="store_true", help="no progress output")

    label = commands.add_parser(
        "label", help="explain units (e.g. class logits) with concepts by INVERT"
    )
    label.add_argument("activations", help=".npz file of activations (n × units)")
    label.add_argument("concepts", help=".csv file of binary concepts (n rows)")
    label.add_argument("--out", help="write the markdown report here")
    label.add_argument("--max-length", type=int, default=3, help="literals per formula")
    label.add_argument("--beam-size", type=int, default=3)
    label.add_argument("--min-fraction", type=float, default=0.0)
    label.add_argument("--max-fraction", type=float, default=0.5)
    label.add_argument("--mode", choices=("positive", "negative"), default="positive")
    label.add_argument(
        "--activation-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="label only samples between these activation quantiles",
    )
    label.add_argument(
        "--band",
        type=float,
        default=None,
        metavar="WIDTH",
        help="also label every unit over its mid band (quantiles 0.5 +- WIDTH/2) and "
        "report both, as the demo explains a class logit (default: all rows only)",
    )
    label.add_argument("--n-explanations", type=int, default=None)
    label.add_argument(
        "--test-size",
        type=float,
        default=None,
        help="choose formulas on part of the data, test on the rest",
    )
    label.add_argument("--random-state", type=int, default=None)
    label.add_argument("--id-column", default="id")
    label.add_argument(
        "--spurious",
        nargs="*",
        default=(),
        help="concept names to flag when an explanation uses them",
    )

    bench = commands.add_parser("bench", help="run a benchmark script from benchmarks/")
    bench.add_argument(
        "name",
        nargs="?",
        default="quality",
        help="benchmark name: quality, core, invert or backbones",
    )
    bench.add_argument(
        "args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark script"
    )
    return parser


def main(argv=None):
    """Run the ``midlogit`` command.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        Exit status.

    Examples
    --------
    >>> from midlogit.cli import main
    >>> main(["bench", "no-such-benchmark"])
    2
    """
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(
            args.dataset,
            bias=args.bias,
            seed=args.seed,
            out=args.out,
            quick=args.quick,
            verbose=0 if args.quiet else 1,
            plots=not args.no_plots,
        )
    elif args.command == "label":
        from .invert import label_files

        def label(activation_range):
            return label_files(
                args.activations,
                args.concepts,
                spurious=list(args.spurious),
                id_column=args.id_column,
                max_length=args.max_length,
                beam_size=args.beam_size,
                min_fraction=args.min_fraction,
                max_fraction=args.max_fraction,
                mode=args.mode,
                activation_range=activation_range,
                n_explanations=args.n_explanations,
                test_size=args.test_size,
                random_state=args.random_state,
            )

        given = None if args.activation_range is None else tuple(args.activation_range)
        report = label(given)
        if args.band is not None:
            if not 0 < args.band <= 1:
                print(
                    f"midlogit label: --band must be in (0, 1], got {args.band}.", file=sys.stderr
                )
                return 2
            lo, hi = 0.5 - args.band / 2, 0.5 + args.band / 2
            report += (
                f"\n\n# Over the mid band (quantiles {lo:.2f}-{hi:.2f} of each unit)\n\n"
                + label((lo, hi))
            )
        if args.out is None:
            print(report)
        else:
            Path(args.out).write_text(report)
    else:
        script = Path(__file__).resolve().parent.parent / "benchmarks" / f"bench_{args.name}.py"
        if not script.exists():
            print(
                f"midlogit bench: no benchmark {args.name!r} ({script} not found; run from "
                "a source checkout).",
                file=sys.stderr,
            )
            return 2
        sys.argv = [str(script), *args.args]
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
