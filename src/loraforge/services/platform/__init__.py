"""Platform ground every domain stands on: audit log, ownership policy, per-owner names, owned-item
libraries, notifications and webhooks, the event hub, secrets at rest, safe file listing and archives."""
