"""The Lego pieces: normalization, positions, attention, feed-forward, blocks."""
