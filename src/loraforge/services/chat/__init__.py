"""Chat: conversations with branches, streaming, export/import, the prompt library and the playground."""
