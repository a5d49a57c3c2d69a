"""Fusion Explorer's core: sample N candidates, select Best-of-N, fuse, attribute, store."""
