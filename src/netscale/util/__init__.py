"""Small shared helpers (I/O, formatting)."""
