"""Decoder training."""
