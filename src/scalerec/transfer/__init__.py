"""transfer stage."""
