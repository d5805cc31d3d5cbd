"""Checking what people write: claims against the engine, and derived gradients against numbers."""
