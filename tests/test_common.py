"""scikit-learn's own estimator checks over every public midlogit estimator.

Estimators are discovered from the package, so a new one is checked without editing
this file; those that cannot be built with default arguments get a factory below.
"""

import importlib
import inspect
import pkgutil

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import midlogit
from midlogit.baselines import GroupBalancedSampler


def discover_estimators():
    """Public estimator classes defined in midlogit, as (name, class), sorted by name."""
    found = {}
    for module_info in pkgutil.iter_modules(midlogit.__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"midlogit.{module_info.name}")
        if hasattr(module, "_moved_to"):
            continue  # a former path: its names are found where they live now
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("midlogit")
            ):
                found[name] = obj
    return sorted(found.items())


def _factories():
    """Constructors for estimators whose defaults cannot be fitted as they are."""
    factories = {}
    try:
        from midlogit.pipeline import Pipeline
        from midlogit.retraining import LastLayerRetrainer
        from midlogit.selection import LogitBandSelector

        factories["Pipeline"] = lambda: Pipeline(
            [
                ("band", LogitBandSelector(band_width=0.8, cv=3, random_state=0)),
                ("head", LastLayerRetrainer(random_state=0)),
            ]
        )
    except ImportError:  # pragma: no cover - the pipeline module is part of the core
        pass
    # The default band (40 % of the logit range, over all samples) can hold a single class
    # on the checks' tiny one-feature data, which is rightly an error; a wide band is not.
    factories["LogitBandSelector"] = lambda: LogitBandSelector(band_width=0.8, cv=3)
    factories["GroupBalancedSampler"] = GroupsFromLabels
    return factories


class GroupsFromLabels(GroupBalancedSampler):
    """GroupBalancedSampler fed groups = y, since scikit-learn's checks pass no groups."""

    def _fit(self, X, y, groups=None):
        return super()._fit(X, y, groups=y if groups is None else groups)


# Checks that cannot hold for an estimator, with the reason.
_STEPS_FITTED_IN_PLACE = (
    "Pipeline fits its steps in place so that named_steps holds the fitted steps, as "
    "scikit-learn's own Pipeline does (which lists the same expected failure)."
)
EXPECTED_FAILURES = {
    "ConceptLabeler": {
        "check_fit_score_takes_y": (
            "fit's arguments are named (A, C), activations and concept matrix, as in the "
            "INVERT API; fit(X, y) passed positionally works and every other check passes."
        ),
    },
    "Pipeline": {
        "check_dont_overwrite_parameters": _STEPS_FITTED_IN_PLACE,
        "check_estimators_overwrite_params": _STEPS_FITTED_IN_PLACE,
    },
}


def _extra_instances():
    """Configurations checked besides each class's default one."""
    from sklearn.preprocessing import StandardScaler

    from midlogit.pipeline import Pipeline
    from midlogit.retraining import LastLayerRetrainer
    from midlogit.selection import LogitBandSelector

    return [
        # A first step that accepts NaN must not make the pipeline claim it does (the
        # claim made check_estimators_pickle feed it NaN).
        Pipeline(
            [
                ("scale", StandardScaler()),
                ("band", LogitBandSelector(band_width=0.8, cv=3, random_state=0)),
                ("head", LastLayerRetrainer(random_state=0)),
            ]
        ),
    ]


def build_instances():
    factories = _factories()
    instances = []
    for name, cls in discover_estimators():
        instance = factories[name]() if name in factories else cls()
        if "random_state" in instance.get_params():
            instance.set_params(random_state=0)
        instances.append(instance)
    return instances + _extra_instances()


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


def test_discovery_finds_the_core_estimators():
    names = {name for name, _ in discover_estimators()}
    assert {
        "LogitBandSelector",
        "EmbeddingClusterer",
        "LastLayerRetrainer",
        "Pipeline",
    } <= names


@parametrize_with_checks(build_instances(), expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# --- imbalanced-learn's sampler checks ---------------------------------------------------

# imbalanced-learn's checks that do not apply to midlogit's samplers, with the reason. A
# listed check must fail (the test below says so when one starts to pass).
_NO_SAMPLING_STRATEGY = (
    "checks for imbalanced-learn's sampling_strategy_ attribute; midlogit's samplers set "
    "their targets through their own parameters (sampling, band, clusters), not through "
    "sampling_strategy."
)
_DENSE_ONLY = (
    "feeds a DataFrame of sparse columns; midlogit's samplers work on dense embeddings "
    "and refuse sparse input with a TypeError that says to call .toarray()."
)
_ONE_D_LABELS = (
    "feeds one-hot (n_samples, n_classes) labels; midlogit's samplers take 1-D class "
    "labels, as scikit-learn's classifiers do, and refuse 2-D ones with a ValueError."
)
_NOT_CLASS_BALANCING = (
    "expects a refusal of a single class; this sampler does not balance classes (it "
    "keeps a random subset, or balances clusters or groups within the classes), so one "
    "class is valid input."
)
_CLUSTER_PREDICT = (
    "treats every estimator with predict as a classifier; EmbeddingClusterer.predict "
    "returns cluster ids (it is a clusterer), so classifier checks do not apply."
)
_COMMON_SAMPLER_EXCEPTIONS = {
    "check_samplers_fit": _NO_SAMPLING_STRATEGY,
    "check_samplers_pandas_sparse": _DENSE_ONLY,
    "check_samplers_multiclass_ova": _ONE_D_LABELS,
}
IMBLEARN_NOT_APPLICABLE = {
    "ClassBalancedSampler": _COMMON_SAMPLER_EXCEPTIONS,
    "LogitBandSelector": _COMMON_SAMPLER_EXCEPTIONS,
    "ErrorSetSelector": _COMMON_SAMPLER_EXCEPTIONS,
    "RandomSubsetSampler": {
        **_COMMON_SAMPLER_EXCEPTIONS,
        "check_samplers_one_label": _NOT_CLASS_BALANCING,
    },
    "GroupsFromLabels": {
        **_COMMON_SAMPLER_EXCEPTIONS,
        "check_samplers_one_label": _NOT_CLASS_BALANCING,
    },
    "EmbeddingClusterer": {
        **_COMMON_SAMPLER_EXCEPTIONS,
        "check_samplers_one_label": _NOT_CLASS_BALANCING,
        "check_classifier_on_multilabel_or_multioutput_targets": _CLUSTER_PREDICT,
        "check_classifiers_with_encoded_labels": _CLUSTER_PREDICT,
    },
}


def _sampler_instances():
    """Every midlogit sampler (GroupBalancedSampler fed groups = y), as configured above."""
    return [
        instance
        for instance in build_instances()
        if hasattr(instance, "fit_resample") and not hasattr(instance, "steps")
    ]


def _imblearn_checks():
    from imblearn.utils.estimator_checks import estimator_checks_generator

    for sampler in _sampler_instances():
        for estimator, check in estimator_checks_generator(sampler, mark=None):
            name = f"{type(estimator).__name__}-{check.func.__name__}"
            yield pytest.param(estimator, check, id=name)


def test_every_sampler_gets_imbalanced_learn_checks():
    checked = {type(sampler).__name__ for sampler in _sampler_instances()}
    samplers = {name for name, cls in discover_estimators() if hasattr(cls, "fit_resample")}
    assert samplers - {"Pipeline", "GroupBalancedSampler"} <= checked
    assert "GroupsFromLabels" in checked
    assert set(IMBLEARN_NOT_APPLICABLE) == checked


@pytest.mark.parametrize("estimator, check", list(_imblearn_checks()))
def test_imbalanced_learn_sampler_check(estimator, check):
    reason = IMBLEARN_NOT_APPLICABLE[type(estimator).__name__].get(check.func.__name__)
    if reason is None:
        check(estimator)
    else:
        with pytest.raises((AssertionError, ValueError, TypeError, AttributeError)):
            check(estimator)


# The one positional parameter a constructor may take: the object it wraps, as for
# scikit-learn's Pipeline(steps) and FrozenEstimator(estimator).
POSITIONAL_PARAMETERS = {"Pipeline": ["steps"], "SkorchEmbedder": ["net"]}


@pytest.mark.parametrize("name, estimator_class", discover_estimators())
def test_constructor_parameters_are_keyword_only(name, estimator_class):
    parameters = list(inspect.signature(estimator_class.__init__).parameters.values())[1:]
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert positional == POSITIONAL_PARAMETERS.get(name, [])
