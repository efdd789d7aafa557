"""SpikeGen core: spike streams, the spike camera model, synthetic data and the SpikeGen model.

Nothing in this package imports nerfstudio; ``spikegen_nvs`` builds on it, never the reverse.
"""

__version__ = "0.1.0"
