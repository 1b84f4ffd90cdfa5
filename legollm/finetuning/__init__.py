"""Fine-tuning on the Trainer: an objective is a dataset, a ``batch_loss`` and metrics.

- ``templates``: chat templates (Llama 3, ChatML, Qwen, plain) rendered to ids + masks.
- ``formats``: prompt formats (Alpaca, or a chat template) and the features they train.
- ``dataset``: records, splits, tokenized Example / PackedRow, collate, InstructionLoader.
- ``runner``: what every objective shares (set-up, trainer base, run files).
- ``sft``: supervised fine-tuning on instruction data.
- ``dpo``: Direct Preference Optimization on chosen / rejected pairs.
"""
