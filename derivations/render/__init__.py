"""Rendering computed results as text, LaTeX and plots; nothing here computes a verdict."""
