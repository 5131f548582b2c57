"""trainer: pre-training, fine-tuning and evaluating COTS on captioned collections (imports cots_core, never app)."""

import cots_core  # noqa: E402, F401 - switches native libraries' telemetry off before they load
