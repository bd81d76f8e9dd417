"""The ``midlogit`` command line: ``demo`` and ``label``.

The benchmarks are scripts of a source checkout, run as ``python benchmarks/bench_x.py``
(see ``benchmarks/README.md``); they are not part of the installed command.
"""

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["main", "build_parser"]

LABEL_FORMATS = """\
input files:
  ACTIVATIONS  an .npz file (np.savez) holding the activations as the array named
               'activations', or as its only array: shape (n,) for one unit or
               (n, units), numbers without NaN. Optional arrays: 'unit_names' (one
               string per unit) and 'ids' (one per row, matched against the concept
               file's id column). A bare .npy array is read too, memory-mapped,
               a block of units at a time: a layer larger than memory will do.
  CONCEPTS     a UTF-8 .csv file: a header row of concept names, then one row per
               sample of 0/1 or true/false values (any case). A column named by
               --id-column holds sample ids: with 'ids' in the activations file the
               rows are matched by id, otherwise they must be in the same order.

p-values are held-out by default: formulas are chosen on one part of the rows and
tested on the other (--test-size); --test-size 0 chooses and tests on all rows, which
makes the p-values optimistic (in-sample) after the search.
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default; descriptions keep their line breaks.

    An option without a value by default (``None``) says in its own help what happens
    then, e.g. "(default: print it)".
    """

    def _get_help_string(self, action):
        if action.default is None or "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


def _fraction(low, high, *, closed_low=True):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        above = value >= low if closed_low else value > low
        if not (above and value <= high):
            bracket = "[" if closed_low else "("
            raise argparse.ArgumentTypeError(f"{text} is not in {bracket}{low:g}, {high:g}]")
        return value

    return parse


def _int_at_least(low, high=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            limit = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{text} is not an integer {limit}")
        return value

    return parse


def _n_jobs(text):
    """joblib's ``n_jobs``: -1 or any integer >= 1."""
    value = _int_at_least(-1)(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not a number of workers: use -1 or >= 1")
    return value


@contextmanager
def _on_cluster(address):
    """Run joblib's work on the Dask cluster at ``address``, or here when it is None."""
    if address is None:
        yield
        return
    try:
        from distributed import Client
    except ImportError:
        raise ValueError("--scheduler needs Dask: pip install 'midlogit[dask]'") from None
    import joblib

    with Client(address, timeout=30), joblib.parallel_backend("dask"):
        yield


def _test_size(text):
    """A fraction in (0, 1), a row count >= 1, or 0 for no held-out rows."""
    try:
        value = int(text)
    except ValueError:
        value = _fraction(0.0, 1.0, closed_low=False)(text)
        if value == 1.0:
            raise argparse.ArgumentTypeError("1.0 leaves no rows to choose formulas on") from None
        return value
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a row count or a fraction")
    return value or None


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
    >>> build_parser().parse_args(["label", "a.npz", "c.csv", "--test-size", "200"]).test_size
    200
    """
    from .experiments.demo import DATASETS

    parser = argparse.ArgumentParser(
        prog="midlogit",
        description="Find and remove the spurious shortcuts a trained network relies on.",
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,label}")

    demo = commands.add_parser(
        "demo",
        help="train an ERM backbone on built-in biased data and compare retrained heads",
        description="Train (or fine-tune) a backbone by ERM on built-in biased data\n"
        "(nothing is downloaded), retrain its last layer with every method, explain\n"
        "its class logits with INVERT, and write a report.",
        formatter_class=_HelpFormatter,
    )
    demo.add_argument("--dataset", choices=DATASETS, default="dsprites", help="built-in data")
    demo.add_argument(
        "--bias",
        type=_fraction(0.0, 1.0),
        default=0.95,
        help="shortcut strength of the training data, in [0, 1]",
    )
    demo.add_argument(
        "--seed",
        type=_int_at_least(0, 2**32 - 1),
        default=0,
        help="seeds data, backbone and methods",
    )
    demo.add_argument(
        "--out", default="midlogit-demo", help="output folder (report, results, figures)"
    )
    demo.add_argument("--quick", action="store_true", help="small data, few epochs")
    demo.add_argument("--no-plots", action="store_true", help="skip the figures")
    demo.add_argument("--quiet", action="store_true", help="no progress output")

    label = commands.add_parser(
        "label",
        help="explain units (e.g. class logits) with concepts by INVERT",
        description="Label every unit of an activations file with the concept formulas\n"
        "it ranks highest (INVERT) and print a Markdown report.",
        epilog=LABEL_FORMATS,
        formatter_class=_HelpFormatter,
    )
    label.add_argument("activations", help=".npz file of activations (n x units), see below")
    label.add_argument("concepts", help=".csv file of binary concepts (n rows), see below")
    label.add_argument("--out", help="write the Markdown report to this file (default: print it)")
    label.add_argument(
        "--max-length", type=_int_at_least(1), default=3, help="most literals per formula"
    )
    label.add_argument("--beam-size", type=_int_at_least(1), default=3, help="beam width")
    label.add_argument(
        "--min-fraction",
        type=_fraction(0.0, 1.0),
        default=0.0,
        help="smallest fraction of the samples a formula may cover",
    )
    label.add_argument(
        "--max-fraction",
        type=_fraction(0.0, 1.0),
        default=0.5,
        help="largest fraction of the samples a formula may cover",
    )
    label.add_argument(
        "--mode",
        choices=("positive", "negative"),
        default="positive",
        help="formulas the unit ranks highest (positive) or lowest (negative)",
    )
    label.add_argument(
        "--alternative",
        choices=("one-sided", "two-sided"),
        default="one-sided",
        help="Mann-Whitney test of the p-values",
    )
    label.add_argument(
        "--activation-range",
        type=_fraction(0.0, 1.0),
        nargs=2,
        metavar=("LO", "HI"),
        help="label only samples between these activation quantiles (default: all samples)",
    )
    label.add_argument(
        "--band",
        type=_fraction(0.0, 1.0, closed_low=False),
        default=None,
        metavar="WIDTH",
        help="also label every unit over its mid band (quantiles 0.5 +- WIDTH/2) and "
        "report both, as the demo explains a class logit (default: all rows only)",
    )
    label.add_argument(
        "--n-explanations",
        type=_int_at_least(1),
        default=None,
        help="formulas listed per unit (default: the beam size)",
    )
    label.add_argument(
        "--test-size",
        type=_test_size,
        default=0.25,
        metavar="SIZE",
        help="rows held out to compute AUC and p-values on: a fraction in (0, 1) or a "
        "row count; 0 uses all rows for both (in-sample, optimistic p-values)",
    )
    label.add_argument(
        "--random-state",
        type=_int_at_least(0, 2**32 - 1),
        default=0,
        help="seed of the held-out split",
    )
    label.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=None,
        help="workers over blocks of units: threads, or with --scheduler the cluster's "
        "workers; -1 for all (default: 1, or with --scheduler every worker)",
    )
    label.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="label on the Dask cluster whose scheduler listens at ADDRESS (e.g. "
        "tcp://10.0.0.5:8786); needs pip install 'midlogit[dask]' (default: on this machine)",
    )
    label.add_argument(
        "--id-column", default="id", help="name of the sample-id column of the CSV file"
    )
    label.add_argument(
        "--spurious",
        nargs="*",
        default=(),
        metavar="CONCEPT",
        help="concept names to flag when an explanation uses them (default: none)",
    )
    return parser


def _label(args):
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
            alternative=args.alternative,
            activation_range=activation_range,
            n_explanations=args.n_explanations,
            test_size=args.test_size,
            random_state=args.random_state,
            n_jobs=args.n_jobs,
        )

    given = None if args.activation_range is None else tuple(args.activation_range)
    with _on_cluster(args.scheduler):
        report = label(given)
        if args.band is not None:
            lo, hi = 0.5 - args.band / 2, 0.5 + args.band / 2
            report += (
                f"\n\n# Over the mid band (quantiles {lo:.2f}-{hi:.2f} of each unit)\n\n"
                + label((lo, hi))
            )
    if args.out is None:
        sys.stdout.write(report if report.endswith("\n") else report + "\n")
        sys.stdout.flush()
    else:
        Path(args.out).write_text(report, encoding="utf-8")


def _demo(args):
    from .experiments.demo import run_demo

    run_demo(
        args.dataset,
        bias=args.bias,
        seed=args.seed,
        out=args.out,
        quick=args.quick,
        verbose=0 if args.quiet else 1,
        plots=not args.no_plots,
    )


def _one_line(exc):
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text


def main(argv=None):
    """Run the ``midlogit`` command.

    Bad input (a malformed file, a value out of range, a missing or unwritable path)
    ends with a one-line message on standard error and status 2, not a traceback (set
    the environment variable ``MIDLOGIT_TRACEBACK=1`` to see one). Output piped into a
    program that stops reading early (``| head``) ends quietly.

    Parameters
    ----------
    argv : list of str or None
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    status : int
        Exit status: 0 on success, 2 on bad input, 130 when interrupted.

    Examples
    --------
    >>> from midlogit.cli import main
    >>> main(["label", "no-such-file.npz", "no-such-file.csv"])
    2
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage and the error (or --help)
        return exc.code
    run = _demo if args.command == "demo" else _label
    try:
        run(args)
    except BrokenPipeError:
        # the reader (``head``) went away: send the rest of the output nowhere, so that
        # the interpreter's final flush does not fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"midlogit {args.command}: interrupted.", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        if os.environ.get("MIDLOGIT_TRACEBACK"):
            raise
        print(f"midlogit {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
