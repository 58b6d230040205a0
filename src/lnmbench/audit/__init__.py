"""`lnmbench audit`: find the suspect labels of a dataset (cross-fit + training dynamics)."""
