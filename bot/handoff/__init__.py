"""The officers' side: duty rota, queue, and what an officer can do to a conversation."""
