"""Importers from other export shapes into the raw file contract: ``invoice-lines``."""
