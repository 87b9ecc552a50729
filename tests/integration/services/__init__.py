"""Example services through real processes (a package, so its conftest never shadows another folder's)."""
