"""What the embedder reads from a net: its output layer, classes and forward pass."""

import numpy as np
import torch
from torch import nn

# ------------------------------------------------------------------------- embedder


def _last_linear(module):
    name = None
    for candidate, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            name = candidate
    return name


def _output_linear(module, X, device):
    """Name of the ``nn.Linear`` whose output is the module's output on two rows of ``X``.

    Registration order says nothing about the order of the forward pass (a hand-written
    module may register its output layer first), so the layer is found by a forward
    hook on every ``nn.Linear``. ``None`` when no ``nn.Linear`` gives the output (for
    example when the module applies a softmax after it) or the rows do not fit the
    module (the forward pass proper then reports it).
    """
    outputs = {}
    output = _probe(module, X, device, outputs)
    if output is None:
        return None
    for name, value in outputs.items():
        if value is output:
            return name
    for name, value in reversed(outputs.items()):
        if value.shape == output.shape and torch.equal(value, output):
            return name
    return None


def _probe(module, X, device, outputs=None):
    """The module's output on the first rows of ``X`` in eval mode (``None`` if the rows
    do not fit it); with ``outputs``, every ``nn.Linear``'s output is recorded in it."""
    handles = []
    if outputs is not None:
        handles = [
            sub.register_forward_hook(
                lambda _m, _i, out, name=name: outputs.__setitem__(name, out)
            )
            for name, sub in module.named_modules()
            if isinstance(sub, nn.Linear)
        ]
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            batch = torch.from_numpy(np.require(X[:_PROBE_ROWS], requirements="CW"))
            output = module(batch.to(device))
    except RuntimeError:
        return None
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    if isinstance(output, tuple | list):
        output = output[0]
    return output


# Rows run through a module to find its output layer and check that it returns logits.
_PROBE_ROWS = 8


def _check_logit_output(module, X, device):
    """Refuse a module whose outputs look like probabilities: every row in [0, 1] and
    summing to 1, as after a softmax (logits of two or more classes almost never do)."""
    output = _probe(module, X, device)
    if output is None or output.ndim != 2 or output.shape[1] < 2:
        return
    values = output.detach().double().cpu()
    sums = values.sum(dim=1)
    if bool(((values >= 0) & (values <= 1)).all()) and bool(
        torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    ):
        raise ValueError(
            f"The module {type(module).__name__} returns probabilities (on {len(values)} "
            "rows every output is in [0, 1] and each row sums to 1: a softmax at the "
            "end), but midlogit needs logits (the band is cut on them, head() is the "
            "layer that gives them). Remove the final softmax from forward (train with "
            "criterion=torch.nn.CrossEntropyLoss, as make_net does, which applies it)."
        )


def _layer_names(module):
    return [name for name, _ in module.named_modules() if name]


def _cuda_devices(device):
    if torch.cuda.is_available() and str(device).startswith("cuda"):
        return [torch.device(device).index or 0]
    return []


def _net_classes(net, n_outputs):
    """The net's ``classes_`` when they match its outputs, else ``0 .. n_outputs - 1``."""
    try:
        classes = np.asarray(net.classes_)
    except AttributeError:
        classes = None
    if n_outputs is None or classes is None or classes.shape != (n_outputs,):
        return np.arange(n_outputs or 0)
    return classes


def _logit_count(module, name=None):
    """Outputs of the ``nn.Linear`` ``name`` (default: the last registered one)."""
    name = _last_linear(module) if name is None else name
    if name is None or not isinstance(module.get_submodule(name), nn.Linear):
        return None
    return module.get_submodule(name).out_features


def _forward(module, layer, take_input, X, batch_size, device):
    """Embeddings and logits of ``X`` in eval mode, batched, through a forward hook."""
    target = module.get_submodule(layer)
    captured = []

    def hook(_module, inputs, output):
        captured.append(inputs[0] if take_input else output)

    handle = target.register_forward_hook(hook)
    was_training = module.training
    module.eval()
    n = X.shape[0]
    embeddings = logits = None
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = X[start : start + batch_size]
                captured.clear()
                try:
                    inputs = torch.from_numpy(np.require(batch, requirements="CW"))
                    output = module(inputs.to(device))
                except RuntimeError as exc:
                    raise ValueError(
                        f"The backbone could not take inputs of shape {X.shape[1:]} per "
                        f"row ({exc}); pass X shaped as the net was trained on."
                    ) from exc
                if isinstance(output, tuple | list):
                    output = output[0]
                if not captured:
                    raise ValueError(
                        f"layer {layer!r} was not called in the module's forward pass; "
                        "name a submodule that forward uses."
                    )
                emb = captured[-1].reshape(batch.shape[0], -1)
                out = output.reshape(batch.shape[0], -1)
                if embeddings is None:
                    embeddings = np.empty((n, emb.shape[1]), dtype=np.float32)
                    logits = np.empty((n, out.shape[1]), dtype=np.float32)
                embeddings[start : start + batch.shape[0]] = emb.float().cpu().numpy()
                logits[start : start + batch.shape[0]] = out.float().cpu().numpy()
    finally:
        handle.remove()
        module.train(was_training)
    return embeddings, logits
