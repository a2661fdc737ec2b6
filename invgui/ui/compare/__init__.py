"""Compare and the evaluation results."""
