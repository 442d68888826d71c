"""Test support shared by tests/ and bench/: in-memory doubles, the local stack harness, state builders.

Nothing in the product (shared, connector, functions, simulator, keeper) imports this package, and it is
not installed with them; tests/ and bench/ import it from the repository root.

- `auth_states`: realistic registered auth states (`registered_state`).
- `bench_processes`: a benchmark's child processes (log folder, emulators, stopped newest first).
- `fake_links`: the connector's link, connectorSync and Pub/Sub doubles; `pair_then_open` scripts a pairing.
- `connector_stack`: the functions over HTTP on the Firestore and Pub/Sub emulators, for connector tests.
- `functions_world` / `memory_stores` / `firestore_rpcs`: the functions' stores in memory, a fake connector,
  and a counter of the Firestore RPCs a call makes.
- `protocol`: the protocol core's fake server (`fake_server`), seeded randomness (`seeded`), the stanza
  corpus (`corpus`) and the fuzzing campaign (`fuzzing`).
"""
