"""Selections of images that are gathered only when read: a fold's training rows of a
memory-mapped cache (with a stage's test images after them) stay a list of row numbers until
an epoch's chunk or a prediction's chunk asks for their pixels. So no stage needs a fold's
whole pixel set in memory: at most CHUNK_BYTES of it at a time."""

import numpy as np

CHUNK_BYTES = 1 << 30  # the pixels one training or prediction chunk gathers at most (1 GiB)


class Rows:
    """`rows` of `array`, then `more` rows of other arrays: [(array, rows), ...], all of one
    image shape and dtype. Indexing with an array of positions (or a slice) gathers them."""

    def __init__(self, array, rows, more=()):
        self.parts = [(array, np.asarray(rows, np.int64))] + [(a, np.asarray(r, np.int64)) for a, r in more]
        shapes = {tuple(a.shape[1:]) for a, _ in self.parts}
        if len(shapes) != 1:
            raise ValueError(f"rows of arrays of different image shapes: {sorted(shapes)}")
        self.shape = (sum(len(r) for _, r in self.parts), *shapes.pop())
        self.dtype = self.parts[0][0].dtype
        self._starts = np.cumsum([0] + [len(r) for _, r in self.parts])

    def __len__(self):
        return self.shape[0]

    @property
    def row_bytes(self):
        return int(np.prod(self.shape[1:])) * self.dtype.itemsize

    def __getitem__(self, index):
        if np.ndim(index) == 0 and not isinstance(index, slice):
            return self[np.array([index])][0]
        positions = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, np.int64)
        out = np.empty((len(positions), *self.shape[1:]), self.dtype)
        part = np.searchsorted(self._starts, positions, side="right") - 1
        for i, (array, rows) in enumerate(self.parts):
            mine = np.flatnonzero(part == i)
            if len(mine):
                wanted = rows[positions[mine] - self._starts[i]]
                sorted_order = np.argsort(wanted, kind="stable")  # read the memory map forwards
                out[mine[sorted_order]] = array[wanted[sorted_order]]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[np.arange(len(self))]
        return out if dtype is None else out.astype(dtype)


def rows_of(array, rows):
    """`array[rows]`, gathered when read."""
    return Rows(array, rows)


def chunk_rows(x, batch_size=1, max_bytes=None):
    """How many rows of `x` (an array or Rows) one chunk holds: a whole number of batches
    within `max_bytes` (CHUNK_BYTES), at least one batch."""
    row_bytes = max(1, int(np.prod(x.shape[1:])) * np.dtype(x.dtype).itemsize)
    limit = CHUNK_BYTES if max_bytes is None else max_bytes
    if limit >= len(x) * row_bytes:
        return max(batch_size, len(x))
    return max(batch_size, int(limit // row_bytes) // batch_size * batch_size)


def chunks(x, batch_size=1, max_bytes=None):
    """`x` (an array or Rows) in consecutive chunks of at most `max_bytes` (CHUNK_BYTES), each
    gathered into memory: (start, pixels) pairs."""
    step = chunk_rows(x, batch_size, max_bytes)
    for start in range(0, len(x), step):
        yield start, np.asarray(x[start: start + step])
