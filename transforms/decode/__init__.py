"""Decoding on Beam: planning blocks at record boundaries, decoding and mapping each block, merging the parts into outputs and quarantine."""
