"""Turning a trained model into text: sampling, greedy and beam search, over any architecture through its decoding methods."""
