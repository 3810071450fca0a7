"""Small helpers every layer may use: polling, fan-out, redaction, phase progress, hashing."""
