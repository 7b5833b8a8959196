"""Fine-tuning tasks: examples, prompt templates, metrics, heads, adapters and the task workload."""
