"""What is learned from runs: verify (float vs deployed, gates), profile (counts, cost models,
on-chip ingestion), the HTML report and design-space sweeps."""
