"""Channel adapters: each verifies, parses and sends; conversation logic stays out."""
