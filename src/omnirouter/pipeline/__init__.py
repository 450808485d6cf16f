"""The one inference pipeline: admit, attempt, relay, settle, record, whatever the client format
and whatever the upstream API (docs/api.md, "One pipeline, many formats and providers")."""
