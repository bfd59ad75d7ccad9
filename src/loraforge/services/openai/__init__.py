"""The OpenAI-compatible resources that are not chat: files (purpose fine-tune) and fine-tuning jobs."""
