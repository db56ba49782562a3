"""Integrations with other training libraries; each imports its library only when imported
itself (``import isoflop`` never imports them)."""
