"""BN across replicas (chapter 09): logical CPU devices, the experiments, and the supervisor of
worker processes."""
