"""Entry point ``spike-data`` (group ``nerfstudio.dataparser_configs``).

Kept light on purpose: nerfstudio imports dataparser entry points while its own modules are still
half-initialised, so this module imports only the registry and our dataparser config.
"""

from __future__ import annotations

from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from spikegen_nvs.dataparser import SpikeDataParserConfig

spike_data = DataParserSpecification(
    config=SpikeDataParserConfig(),
    description="Spike-camera scene folders (transforms.json + per-view spike windows), see docs/INTERFACES.md",
)
