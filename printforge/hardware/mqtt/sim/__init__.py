"""Simulated printers that speak the real protocols on a real broker, with fault injection."""
