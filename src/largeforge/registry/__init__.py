"""The model registry: versions with lineage, aliases with history, content-addressed artifacts."""
