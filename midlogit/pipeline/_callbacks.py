"""scikit-learn's fit callbacks, or silent stand-ins where scikit-learn has none (< 1.9)."""

from contextlib import contextmanager

try:
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # scikit-learn < 1.9 has no callbacks; fit then reports to nobody

    class _SilentContext:
        def subcontext(self, **_):
            return self

        def call_on_fit_task_begin(self, **_):
            return self

        def call_on_fit_task_end(self, **_):
            return False

        @contextmanager
        def propagate_callback_context(self, sub_estimator):
            yield

    class CallbackSupportMixin:
        def _init_callback_context(self, **_):
            return _SilentContext()

    def with_callbacks(method):
        return method
