"""Training and experiments: network specs, the shared training step, runs over seeds
(chapter 07) and the experiments of chapter 09 on one device (small batches, transfer)."""
