"""Geography helpers: recognising countries, territories and places in free text."""
