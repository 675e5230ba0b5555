"""The duty officers' console: sign-in, the queue, and conversations taken over."""
