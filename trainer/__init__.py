"""trainer: pre-training, fine-tuning and evaluating COTS on captioned collections (imports cots_core, never app)."""
