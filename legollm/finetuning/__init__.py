"""Fine-tuning: prompt formats, chat templates, datasets, SFT and DPO."""
