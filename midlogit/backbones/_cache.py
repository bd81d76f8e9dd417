"""The row cache: embeddings and logits keyed on a net's weights and each row's content."""

import functools
import hashlib
import threading
from collections import OrderedDict

import numpy as np
import torch

# ----------------------------------------------------------------------------- cache

_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_SHIFTS = np.uint64(30), np.uint64(27), np.uint64(31)
_HASH_CHUNK = 1 << 16  # 64-bit words per step: 512 kB temporaries stay in cache


@functools.lru_cache(maxsize=8)
def _position_salts(n_words):
    return np.random.default_rng(0x6D69646C).integers(
        0, np.iinfo(np.uint64).max, size=n_words, dtype=np.uint64, endpoint=True
    )


def _row_keys(X):
    """A 64-bit content fingerprint of every row of a float32 array.

    The row's bytes are read as 64-bit words; each word is salted with a constant of
    its position and passed through splitmix64's finaliser (a bijection, so a changed
    word always changes its term); the terms are summed modulo 2**64. Not
    cryptographic: two distinct rows share a key with probability about 2**-64.
    """
    rows = X.reshape(X.shape[0], -1)
    if rows.shape[1] % 2:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], 1), rows.dtype)], axis=1)
    words = np.ascontiguousarray(rows).view(np.uint64)
    n, m = words.shape
    salts = _position_salts(m)
    keys = np.empty(n, dtype=np.uint64)
    step = max(1, _HASH_CHUNK // max(m, 1))
    for start in range(0, n, step):
        z = words[start : start + step] ^ salts
        z ^= z >> _SHIFTS[0]
        z *= _MIX1
        z ^= z >> _SHIFTS[1]
        z *= _MIX2
        z ^= z >> _SHIFTS[2]
        keys[start : start + step] = z.sum(axis=1, dtype=np.uint64)
    return keys


def _net_key(module, layer, row_shape, device):
    """Fingerprint of everything that decides a forward pass: weights, layer, input."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((type(module).__qualname__, layer, row_shape, str(device))).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        flat = tensor.detach().reshape(-1).cpu().contiguous()
        digest.update(str(flat.dtype).encode())
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()


class _EmbeddingCache:
    """Embeddings and logits of rows already pushed through a backbone, LRU by bytes.

    Entries are blocks: the sorted row keys of one forward pass, their embeddings and
    their logits. A lookup searches a net's blocks with ``np.searchsorted``; a block
    that served a row becomes the most recently used; the least recently used blocks
    are dropped while the total exceeds ``max_bytes``.
    """

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self.clear()

    def clear(self):
        with self._lock:
            self._blocks = OrderedDict()
            self._next_id = 0
            self.n_bytes = 0
            self.rows_computed = 0
            self.rows_reused = 0

    def lookup(self, net_key, keys):
        """Rows of ``keys`` held for ``net_key``: (their indices, embeddings, logits)."""
        found = np.zeros(keys.shape[0], dtype=bool)
        parts = []
        with self._lock:
            for block_id in [b for b in self._blocks if b[0] == net_key]:
                block_keys, block_embeddings, block_logits = self._blocks[block_id]
                position = np.searchsorted(block_keys, keys)
                position[position == block_keys.shape[0]] = 0
                hit = ~found & (block_keys[position] == keys)
                if hit.any():
                    rows = np.flatnonzero(hit)
                    parts.append(
                        (rows, block_embeddings[position[rows]], block_logits[position[rows]])
                    )
                    found |= hit
                    self._blocks.move_to_end(block_id)
        if not parts:
            return np.empty(0, dtype=np.intp), None, None
        rows, embeddings, logits = zip(*parts)
        return np.concatenate(rows), np.concatenate(embeddings), np.concatenate(logits)

    def add(self, net_key, keys, embeddings, logits):
        size = keys.nbytes + embeddings.nbytes + logits.nbytes
        with self._lock:
            if size > self.max_bytes:
                return
            self._blocks[(net_key, self._next_id)] = (keys, embeddings, logits)
            self._next_id += 1
            self.n_bytes += size
            self._evict()

    def _evict(self):
        while self.n_bytes > self.max_bytes and self._blocks:
            _, (keys, embeddings, logits) = self._blocks.popitem(last=False)
            self.n_bytes -= keys.nbytes + embeddings.nbytes + logits.nbytes

    def resize(self, max_bytes):
        with self._lock:
            self.max_bytes = int(max_bytes)
            self._evict()

    def count(self, computed, reused):
        with self._lock:
            self.rows_computed += int(computed)
            self.rows_reused += int(reused)

    def info(self):
        with self._lock:
            return {
                "rows_computed": self.rows_computed,
                "rows_reused": self.rows_reused,
                "n_bytes": self.n_bytes,
                "max_bytes": self.max_bytes,
                "n_blocks": len(self._blocks),
            }


_CACHE = _EmbeddingCache(max_bytes=256 * 2**20)


def cache_info():
    """Counters and size of the process-wide embedding cache.

    Returns
    -------
    info : dict
        ``rows_computed``: rows pushed through a backbone by any
        :class:`SkorchEmbedder` (with or without the cache) since the last
        :func:`clear_cache`; ``rows_reused``: rows served from the cache instead
        (including repeats within one call); ``n_bytes`` and ``max_bytes``: memory
        held and its bound; ``n_blocks``: cached forward passes.

    Examples
    --------
    >>> from midlogit.backbones import cache_info
    >>> sorted(cache_info())
    ['max_bytes', 'n_blocks', 'n_bytes', 'rows_computed', 'rows_reused']
    """
    return _CACHE.info()


def clear_cache():
    """Empty the embedding cache and reset its counters.

    Examples
    --------
    >>> from midlogit.backbones import cache_info, clear_cache
    >>> clear_cache()
    >>> cache_info()["n_bytes"]
    0
    """
    _CACHE.clear()


def set_cache_limit(max_bytes):
    """Bound the memory of the embedding cache (default 256 MiB; 0 keeps nothing).

    Parameters
    ----------
    max_bytes : int
        Bytes of keys, embeddings and logits kept; least recently used forward passes
        are dropped first.

    Examples
    --------
    >>> from midlogit.backbones import cache_info, set_cache_limit
    >>> set_cache_limit(64 * 2**20)
    >>> cache_info()["max_bytes"]
    67108864
    >>> set_cache_limit(256 * 2**20)
    """
    if not (isinstance(max_bytes, int | np.integer) and max_bytes >= 0):
        raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}.")
    _CACHE.resize(max_bytes)
