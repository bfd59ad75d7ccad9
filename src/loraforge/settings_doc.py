"""The settings table for the README (`loraforge settings-doc`): variable, default, description."""

from __future__ import annotations

from typing import Any

from loraforge.settings import Settings


def settings_markdown_table() -> str:
    """A markdown table of every setting: environment variable, default, description."""
    prefix = Settings.model_config.get("env_prefix", "")
    rows = ["| Environment variable | Default | Description |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default: Any = field.get_default(call_default_factory=True)
        if name == "database_url":
            shown = "`sqlite:///<data_dir>/loraforge.db`"
        elif name == "jwt_secret":
            shown = "generated, in `<data_dir>/secrets/jwt_secret`"
        elif name == "web_dist_dir":
            shown = "`<package>/web/dist`"
        elif default is None:
            shown = "unset"
        elif isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        else:
            shown = f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{prefix}{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows) + "\n"
