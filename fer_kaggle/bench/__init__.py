"""Benchmarks (`make bench`): each compares against a baseline in the same run, as a ratio.

- parse: the competition reader and its cache against pandas
- training: the toolkit's training step against plain `model.fit`, prediction with TTA
- blending: blend seconds for N members of the real training-set size
- memory: peak resident memory of one fold job on the data in use
"""
