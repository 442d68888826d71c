"""Regenerate ``<name>_pb2.py`` / ``<name>_pb2.pyi`` from each ``<name>.proto`` here (``make proto``).

``wa.proto`` holds the connection, login and pairing messages; ``wa_e2e.proto`` the end-to-end ``Message``.

Needs ``grpcio-tools`` (its bundled protoc must not be newer than the installed ``protobuf`` runtime).
The stub gets a mypy directive because protoc writes bare ``Mapping`` annotations that strict mypy refuses.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUB_HEADER = '# mypy: disable-error-code="type-arg"\n'


def main() -> int:
    try:
        protoc = importlib.import_module("grpc_tools.protoc")
    except ImportError:
        print("grpcio-tools is not installed: pip install grpcio-tools", file=sys.stderr)
        return 2
    for source in sorted(HERE.glob("*.proto")):
        status = int(protoc.main([
            "protoc", f"-I{HERE}", f"--python_out={HERE}", f"--pyi_out={HERE}", str(source),
        ]))
        if status != 0:
            return status
        stub = HERE / f"{source.stem}_pb2.pyi"
        text = stub.read_text()
        if not text.startswith(STUB_HEADER):
            stub.write_text(STUB_HEADER + text)
        print(f"generated {HERE / f'{source.stem}_pb2.py'} and {stub.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
