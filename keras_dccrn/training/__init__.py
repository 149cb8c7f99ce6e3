"""Training machinery shared by the training apps: progress logging of long runs."""
