"""Use cases, where the pure core, the database and the ports meet. One module per job."""
