"""Diagnostics a competitor studies, computed from OOF predictions and held-out rows only."""
