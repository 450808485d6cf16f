"""Workspaces and organisation members: shared by the API (/workspaces, /organization/members) and the
CLI (`omnirouter workspaces`, `omnirouter members`)."""

from __future__ import annotations

DEFAULT_WORKSPACE_ID = "00000000-0000-4000-8000-000000000000"
