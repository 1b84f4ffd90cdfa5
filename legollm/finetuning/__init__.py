"""Instruction fine-tuning: prompt formats, chat templates, datasets, SFT."""
