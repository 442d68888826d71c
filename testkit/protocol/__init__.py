"""Protocol-core test support: a fake server, seeded randomness, a stanza corpus, the fuzzing campaign."""
