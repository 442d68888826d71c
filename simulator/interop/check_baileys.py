"""Manual interop check: Baileys (Node) pairs by QR, logs in, and is logged out by an unlink.

Not part of ``make test`` (it needs its own npm install)::

    npm install --prefix simulator/interop --no-audit --no-fund
    .venv/bin/python simulator/interop/check_baileys.py

Prints each step and exits non-zero when Baileys does not get through. Baileys 6.7 checks only the
intermediate certificate's issuer serial, so it needs no root-key patch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from simulator.testing import running_simulator  # noqa: E402

PHONE = "+40700000001"
STEP_TIMEOUT_S = 30


async def check() -> int:
    if not (HERE / "node_modules" / "@whiskeysockets" / "baileys").is_dir():
        print("Baileys is not installed: npm install --prefix simulator/interop", file=sys.stderr)
        return 2
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        with tempfile.TemporaryDirectory() as auth_dir:
            proc = await asyncio.create_subprocess_exec(
                "node", str(HERE / "baileys_pair.mjs"), sim.ws_url, auth_dir, stdout=asyncio.subprocess.PIPE, cwd=HERE
            )
            assert proc.stdout is not None
            seen: list[str] = []
            try:
                while line := await asyncio.wait_for(proc.stdout.readline(), STEP_TIMEOUT_S):
                    event = json.loads(line)
                    seen.append(f"{event['event']}{'' if event.get('code') is None else ' ' + str(event['code'])}")
                    print("baileys:", seen[-1])
                    if event["event"] == "qr":
                        print("phone scanned:", (await control.scan(PHONE, event["qr"]))["device"])
                    elif event["event"] == "open":
                        await asyncio.sleep(1)
                        device = await control.device(PHONE, 1)
                        print(f"simulator: liveSockets={device['liveSockets']} loginCount={device['loginCount']} "
                              f"preKeyCount={device['preKeyCount']}")
                        await control.unlink(PHONE, 1)
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()
    expected = ["qr", "close 515", "open", "close 401"]
    ok = seen == expected
    print("OK" if ok else f"FAILED: expected {expected}, saw {seen}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(check()))
