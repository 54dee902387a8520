"""The ingest benchmark: a bare receiver, Flower and the console's collector side by side."""
