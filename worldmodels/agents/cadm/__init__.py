"""CaDM (Lee et al. 2020): context-aware forward and backward dynamics ensembles."""
