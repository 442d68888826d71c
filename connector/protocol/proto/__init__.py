"""Generated protobuf modules (``wa_pb2``) for keeper's subset of the WhatsApp schema (``wa.proto``)."""
