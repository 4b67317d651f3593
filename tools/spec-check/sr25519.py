"""sr25519 (schnorrkel 0.11) key expansion and signature verification, with merlin transcripts
over STROBE-128/Keccak-f[1600]. Pure Python, from the merlin/STROBE specs and docs/PROTOCOL.md §2."""
import hashlib, struct
import r255

# ---- Keccak-f[1600] --------------------------------------------------------------------------
_RC = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
       0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
       0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
       0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
       0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
       0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008]
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56],
        [27, 20, 39, 8, 14]]
M64 = (1 << 64) - 1


def _rol(x, n): return ((x << n) | (x >> (64 - n))) & M64 if n else x


def keccak_f1600(state: bytearray):
    A = [[int.from_bytes(state[8 * (x + 5 * y):8 * (x + 5 * y) + 8], 'little') for y in range(5)] for x in range(5)]
    for rc in _RC:
        C = [A[x][0] ^ A[x][1] ^ A[x][2] ^ A[x][3] ^ A[x][4] for x in range(5)]
        D = [C[(x - 1) % 5] ^ _rol(C[(x + 1) % 5], 1) for x in range(5)]
        A = [[A[x][y] ^ D[x] for y in range(5)] for x in range(5)]
        Bm = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                Bm[y][(2 * x + 3 * y) % 5] = _rol(A[x][y], _ROT[x][y])
        A = [[Bm[x][y] ^ ((~Bm[(x + 1) % 5][y]) & Bm[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
        A[0][0] ^= rc
    for x in range(5):
        for y in range(5):
            state[8 * (x + 5 * y):8 * (x + 5 * y) + 8] = A[x][y].to_bytes(8, 'little')


# Known answer: Keccak-f[1600] of the zero state (first lane).
_z = bytearray(200); keccak_f1600(_z)
assert _z[:8] == bytes.fromhex('e7dde140798f25f1'), _z[:8].hex()

# ---- STROBE-128 as merlin uses it ------------------------------------------------------------
R = 166
I, A_, C, T, M, K = 1, 2, 4, 8, 16, 32


class Strobe128:
    def __init__(self, label):
        st = bytearray(200)
        st[0:6] = bytes([1, R + 2, 1, 0, 1, 96])
        st[6:18] = b'STROBEv1.0.2'
        keccak_f1600(st)
        self.st, self.pos, self.pos_begin, self.cur_flags = st, 0, 0, 0
        self.meta_ad(label, False)

    def _run_f(self):
        self.st[self.pos] ^= self.pos_begin
        self.st[self.pos + 1] ^= 0x04
        self.st[R + 1] ^= 0x80
        keccak_f1600(self.st)
        self.pos = 0; self.pos_begin = 0

    def _absorb(self, data):
        for b in data:
            self.st[self.pos] ^= b
            self.pos += 1
            if self.pos == R:
                self._run_f()

    def _squeeze(self, n):
        out = bytearray()
        for _ in range(n):
            out.append(self.st[self.pos]); self.st[self.pos] = 0
            self.pos += 1
            if self.pos == R:
                self._run_f()
        return bytes(out)

    def _begin_op(self, flags, more):
        if more:
            assert self.cur_flags == flags
            return
        old_begin = self.pos_begin
        self.pos_begin = self.pos + 1
        self.cur_flags = flags
        self._absorb(bytes([old_begin, flags]))
        if flags & (C | K) and self.pos != 0:
            self._run_f()

    def meta_ad(self, data, more): self._begin_op(M | A_, more); self._absorb(data)
    def ad(self, data, more): self._begin_op(A_, more); self._absorb(data)
    def prf(self, n, more): self._begin_op(I | A_ | C, more); return self._squeeze(n)


class Transcript:
    def __init__(self, label):
        self.s = Strobe128(b'Merlin v1.0')
        self.append_message(b'dom-sep', label)

    def append_message(self, label, msg):
        self.s.meta_ad(label, False)
        self.s.meta_ad(struct.pack('<I', len(msg)), True)
        self.s.ad(msg, False)

    def challenge_bytes(self, label, n):
        self.s.meta_ad(label, False)
        self.s.meta_ad(struct.pack('<I', n), True)
        return self.s.prf(n, False)


# merlin's published test: "equivalence_simple"
_t = Transcript(b'test protocol')
_t.append_message(b'some label', b'some data')
assert _t.challenge_bytes(b'challenge', 32).hex() == 'd5a21972d0d5fe320c0d263fac7fffb8145aa640af6e9bca177c03c7efcf0615'


# ---- schnorrkel ------------------------------------------------------------------------------
def expand_seed(seed):
    """MiniSecretKey::expand(ExpansionMode::Ed25519): scalar and public key."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248; h[31] &= 63; h[31] |= 64
    k = int.from_bytes(h, 'little') >> 3
    return k, r255.mul(k, r255.B)


def public_from_seed(seed): return r255.encode(expand_seed(seed)[1])


def verify(public_bytes, context, message, sig):
    """schnorrkel PublicKey::verify(signing_context(context).bytes(message), sig)."""
    A = r255.decode(public_bytes)
    if A is None or len(sig) != 64 or not (sig[63] & 0x80):
        return False
    Rb = sig[:32]
    s_bytes = bytearray(sig[32:]); s_bytes[31] &= 0x7f
    s = int.from_bytes(s_bytes, 'little')
    if s >= r255.L:
        return False
    t = Transcript(b'SigningContext')
    t.append_message(b'', context)
    t.append_message(b'sign-bytes', message)
    t.append_message(b'proto-name', b'Schnorr-sig')
    t.append_message(b'sign:pk', public_bytes)
    t.append_message(b'sign:R', Rb)
    k = int.from_bytes(t.challenge_bytes(b'sign:c', 64), 'little') % r255.L
    Rp = r255.add(r255.mul(k, r255.neg(A)), r255.mul(s, r255.B))
    return r255.encode(Rp) == Rb


assert public_from_seed(bytes.fromhex('e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a')).hex() \
    == 'd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d'  # Substrate //Alice
