"""Wire protocol v1 (docs/protocol.md): packet codec, crypto seal, persisted counters.
Every failure in this package raises ProtoError with a reason string (the same strings as
the server's urelief.protocol.Reason, plus "counter" for counter storage trouble)."""


class ProtoError(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
