"""Studio: from raw text to a trained, fine-tuned language model."""

__version__ = "0.1.0"
