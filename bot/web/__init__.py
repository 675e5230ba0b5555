"""Server-rendered web pages: the public web chat demo page and its static files."""
