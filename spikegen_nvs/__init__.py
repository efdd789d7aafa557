"""nerfstudio plugin: method `spikegen-splat`, dataparser `spike-data` (kept import-light on purpose)."""
