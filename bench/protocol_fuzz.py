"""Byte-level fuzz campaign of the protocol core: mutated real stanzas, frames and protobufs.

Prints the inputs per target and every escape (an exception other than ``ProtocolError`` out of a
decoder, or a client left half-way), with one example input each. The suite runs the same targets
with fewer inputs (``tests/connector/protocol/test_fuzz.py``).

    .venv/bin/python -m bench.protocol_fuzz --inputs 1100000 --seed 16
"""

from __future__ import annotations

import argparse
import time

from testkit.protocol.fuzzing import run_campaign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_100_000)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--client-share", type=float, default=0.05,
                        help="share of inputs fed through whole clients (AUTHENTICATING and OPEN)")
    args = parser.parse_args()
    started = time.perf_counter()
    campaign = run_campaign(args.inputs, args.seed, client_share=args.client_share)
    elapsed = time.perf_counter() - started
    total = sum(campaign.inputs.values())
    print(f"protocol fuzz: {total:,} inputs in {elapsed:.1f} s (seed {args.seed})")
    for target, count in sorted(campaign.inputs.items()):
        escaped = sum(n for key, n in campaign.escapes.items() if key.startswith(target + ":"))
        print(f"  {target:26} {count:>10,} inputs  {escaped:>6,} escapes")
    print(f"escapes: {sum(campaign.escapes.values()):,}")
    for key, count in campaign.escapes.most_common():
        print(f"  {count:>6,}  {key}  e.g. {campaign.examples[key][:48].hex()}")


if __name__ == "__main__":
    main()
