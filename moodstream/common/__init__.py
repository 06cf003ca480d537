"""Shared leaves below every stage: secret redaction, execution providers, Redis stream keys."""
