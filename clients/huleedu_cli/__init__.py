"""Command-line client for the upstream role: submit essay batches, follow them, save results."""
