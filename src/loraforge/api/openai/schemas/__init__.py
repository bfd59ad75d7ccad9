"""Request and response models of the OpenAI-compatible API (`/v1`), one module per resource, in
OpenAI's shapes: the official `openai` client parses them (field names, `object` tags and list
envelopes match its types)."""
