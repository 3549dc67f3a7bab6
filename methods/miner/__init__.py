"""MINER: a Laplacian pyramid of tiny per-block MLPs, trained coarse to fine with block pruning (sr_miner.md B)."""
