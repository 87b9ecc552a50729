"""Database backends of the library: only what an older supported Django lacks."""
