"""The formula language: numpy-like text read through an `ast` whitelist into SymPy."""
