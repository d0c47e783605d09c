"""Evidence: one image read once and hashed, the files a batch will analyze, file hashes, and
the provenance (Content Credentials) an image may carry."""
