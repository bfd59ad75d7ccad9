"""Platform ground every domain stands on: audit log, ownership policy, per-owner names, notifications and
webhooks, the event hub, secrets at rest."""
