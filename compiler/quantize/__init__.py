"""Quantization passes: NetworkIR (+ calibration ranges) -> Program in one target's integers."""
