"""Regenerate ``wa_pb2.py`` / ``wa_pb2.pyi`` from ``wa.proto`` (``python -m connector.protocol.proto.generate``).

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
    status = int(protoc.main([
        "protoc", f"-I{HERE}", f"--python_out={HERE}", f"--pyi_out={HERE}", str(HERE / "wa.proto"),
    ]))
    if status != 0:
        return status
    stub = HERE / "wa_pb2.pyi"
    text = stub.read_text()
    if not text.startswith(STUB_HEADER):
        stub.write_text(STUB_HEADER + text)
    print(f"generated {HERE / 'wa_pb2.py'} and {stub.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
