"""Embeddings and logits of a large input, written to ``.npy`` memmaps in batches."""

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm


def _batches(X, batch_size):
    """Row batches of ``X`` as arrays: slices of an array-like, or a Dataset's loader."""
    if isinstance(X, torch.utils.data.Dataset):
        for batch in torch.utils.data.DataLoader(X, batch_size=batch_size, shuffle=False):
            if isinstance(batch, list | tuple):
                batch = batch[0]
            yield np.asarray(batch.numpy() if torch.is_tensor(batch) else batch)
        return
    for start in range(0, len(X), batch_size):
        yield X[start : start + batch_size]


def _embed_to_npy(embedder, X, embeddings_path, logits_path, progress):
    """See :meth:`SkorchEmbedder.embed_to_npy`."""
    embedder._fitted_net()
    embedder._check_params()
    if isinstance(X, torch.utils.data.IterableDataset):
        raise TypeError(
            "an IterableDataset has no length to size the files by; pass a map-style "
            "torch Dataset (with __len__ and __getitem__), an array or LazyImages."
        )
    n = len(X)
    if n == 0:
        raise ValueError("X has no rows to embed.")
    paths = [Path(embeddings_path)] + ([Path(logits_path)] if logits_path is not None else [])
    if len(set(p.resolve() for p in paths)) < len(paths):
        raise ValueError("embeddings_path and logits_path must be different files.")
    files = None
    start = 0
    with tqdm(total=n, unit="row", desc="embedding", disable=not progress) as bar:
        for batch in _batches(X, embedder.batch_size):
            outputs = embedder._embed(batch, cache=False)[: len(paths)]
            if files is None:
                files = [
                    np.lib.format.open_memmap(
                        path, mode="w+", dtype=np.float32, shape=(n, out.shape[1])
                    )
                    for path, out in zip(paths, outputs)
                ]
            stop = start + outputs[0].shape[0]
            for file, out in zip(files, outputs):
                file[start:stop] = out
            start = stop
            bar.update(outputs[0].shape[0])
    if start != n:
        raise ValueError(f"X gave {start} rows but has length {n}.")
    for file in files or []:
        file.flush()
    del files
    opened = [np.load(path, mmap_mode="r") for path in paths]
    return opened[0], opened[1] if logits_path is not None else None
