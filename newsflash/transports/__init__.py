"""Transports: how a message leaves. One small interface, one module per way out."""
