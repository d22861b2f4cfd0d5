"""The batched ngspice engine: decks, runs, raw files, failures."""
