"""GPU layer."""
