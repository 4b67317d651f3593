"""ristretto255 (RFC 9496), hash-to-group (RFC 9380), and the RFC 9497 VOPRF pieces keyward uses.
Pure Python, written from the RFCs and docs/PROTOCOL.md, not from keyward's code."""
import hashlib, struct

p = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # group order
d = (-121665 * pow(121666, p - 2, p)) % p
SQRT_M1 = pow(2, (p - 1) // 4, p)


def inv(x): return pow(x, p - 2, p)
def is_neg(x): return (x % p) & 1
def ct_abs(x):
    x %= p
    return p - x if is_neg(x) else x


def sqrt_ratio_m1(u, v):
    u %= p; v %= p
    v3 = v * v % p * v % p
    v7 = v3 * v3 % p * v % p
    r = (u * v3) * pow(u * v7 % p, (p - 5) // 8, p) % p
    check = v * r * r % p
    correct = check == u
    flipped = check == (-u) % p
    flipped_i = check == (-u * SQRT_M1) % p
    if flipped or flipped_i:
        r = SQRT_M1 * r % p
    return (correct or flipped), ct_abs(r)


INVSQRT_A_MINUS_D = sqrt_ratio_m1(1, (-1 - d) % p)[1]
# RFC 9496 fixes this root (the odd one), so it is taken as printed and only checked.
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
assert SQRT_AD_MINUS_ONE * SQRT_AD_MINUS_ONE % p == (-d - 1) % p
ONE_MINUS_D_SQ = (1 - d * d) % p
D_MINUS_ONE_SQ = (d - 1) * (d - 1) % p
# RFC 9496 §4.1 constants, as printed there.
assert SQRT_M1 == 19681161376707505956807079304988542015446066515923890162744021073123829784752
assert INVSQRT_A_MINUS_D == 54469307008909316920995813868745141605393597292927456921205312896311721017578
assert ONE_MINUS_D_SQ == 1159843021668779879193775521855586647937357759715417654439879720876111806838
assert D_MINUS_ONE_SQ == 40440834346308536858101042469323190826248399146238708352240133220865137265952

# Extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z.
IDENTITY = (0, 1, 1, 0)


def _xrecover(y):
    xx = (y * y - 1) * inv(d * y * y + 1) % p
    x = pow(xx, (p + 3) // 8, p)
    if (x * x - xx) % p:
        x = x * SQRT_M1 % p
    if x % 2:
        x = p - x
    return x


_By = 4 * inv(5) % p
B = (_xrecover(_By), _By, 1, _xrecover(_By) * _By % p)


def add(P, Q):
    X1, Y1, Z1, T1 = P; X2, Y2, Z2, T2 = Q
    A = (Y1 - X1) * (Y2 - X2) % p; Bb = (Y1 + X1) * (Y2 + X2) % p
    C = T1 * 2 * d * T2 % p; D = Z1 * 2 * Z2 % p
    E = Bb - A; F = D - C; G = D + C; H = Bb + A
    return (E * F % p, G * H % p, F * G % p, E * H % p)


def neg(P):
    X, Y, Z, T = P
    return ((-X) % p, Y, Z, (-T) % p)


def mul(s, P):
    s %= L
    Q = IDENTITY
    while s:
        if s & 1:
            Q = add(Q, P)
        P = add(P, P); s >>= 1
    return Q


def encode(P):
    """RFC 9496 §4.3.2 Encode."""
    x0, y0, z0, t0 = P
    u1 = (z0 + y0) * (z0 - y0) % p
    u2 = x0 * y0 % p
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 * u2 % p)
    den1 = invsqrt * u1 % p; den2 = invsqrt * u2 % p
    z_inv = den1 * den2 * t0 % p
    ix0 = x0 * SQRT_M1 % p; iy0 = y0 * SQRT_M1 % p
    enchanted = den1 * INVSQRT_A_MINUS_D % p
    if is_neg(t0 * z_inv):
        x, y, den_inv = iy0, ix0, enchanted
    else:
        x, y, den_inv = x0, y0, den2
    if is_neg(x * z_inv):
        y = (-y) % p
    s = ct_abs((z0 - y) * den_inv)
    return s.to_bytes(32, 'little')


def decode(b):
    """RFC 9496 §4.3.1 Decode; None if invalid."""
    s = int.from_bytes(b, 'little')
    if s >= p or is_neg(s):
        return None
    ss = s * s % p
    u1 = (1 - ss) % p; u2 = (1 + ss) % p
    u2_sqr = u2 * u2 % p
    v = (-(d * u1 * u1) - u2_sqr) % p
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr % p)
    den_x = invsqrt * u2 % p
    den_y = invsqrt * den_x % p * v % p
    x = ct_abs(2 * s * den_x)
    y = u1 * den_y % p
    t = x * y % p
    if not was_square or is_neg(t) or y == 0:
        return None
    return (x, y, 1, t)


def eq(P, Q):
    X1, Y1, _, _ = P; X2, Y2, _, _ = Q
    return (X1 * Y2 - Y1 * X2) % p == 0 or (Y1 * Y2 - X1 * X2) % p == 0


def _map(t):
    """RFC 9496 §4.3.4 MAP."""
    r = SQRT_M1 * t * t % p
    u = (r + 1) * ONE_MINUS_D_SQ % p
    v = (-1 - r * d) * (r + d) % p
    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-ct_abs(s * t)) % p
    if not was_square:
        s = s_prime
    c = p - 1 if was_square else r
    N = (c * (r - 1) * D_MINUS_ONE_SQ - v) % p
    w0 = 2 * s * v % p
    w1 = N * SQRT_AD_MINUS_ONE % p
    w2 = (1 - s * s) % p
    w3 = (1 + s * s) % p
    return (w0 * w3 % p, w2 * w1 % p, w1 * w3 % p, w0 * w2 % p)


def from_uniform_bytes(b64):
    """RFC 9496 §4.3.4 element derivation from 64 uniform bytes."""
    r0 = int.from_bytes(b64[:32], 'little') & ((1 << 255) - 1)
    r1 = int.from_bytes(b64[32:], 'little') & ((1 << 255) - 1)
    return add(_map(r0 % p), _map(r1 % p))


def expand_message_xmd_sha512(msg, dst, n):
    """RFC 9380 §5.3.1 with SHA-512 (b = 64, s = 128)."""
    assert len(dst) <= 255
    ell = -(-n // 64)
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(b'\0' * 128 + msg + struct.pack('>H', n) + b'\0' + dst_prime).digest()
    bi = hashlib.sha512(b0 + b'\x01' + dst_prime).digest()
    out = bi
    for i in range(2, ell + 1):
        bi = hashlib.sha512(bytes(a ^ c for a, c in zip(b0, bi)) + bytes([i]) + dst_prime).digest()
        out += bi
    return out[:n]


CONTEXT = b'OPRFV1-\x01-ristretto255-SHA512'


def var16(b): return struct.pack('>H', len(b)) + b


def hash_to_group(x):
    return from_uniform_bytes(expand_message_xmd_sha512(x, b'HashToGroup-' + CONTEXT, 64))


def hash_to_scalar(x, dst=b'HashToScalar-' + CONTEXT):
    return int.from_bytes(expand_message_xmd_sha512(x, dst, 64), 'little') % L


def derive_key_pair(seed, info):
    """RFC 9497 DeriveKeyPair."""
    derive_input = seed + var16(info)
    for counter in range(256):
        k = hash_to_scalar(derive_input + bytes([counter]), b'DeriveKeyPair' + CONTEXT)
        if k:
            return k
    raise ValueError('DeriveKeyPairError')


def finalize(input_, N_bytes):
    """RFC 9497 Finalize hash: SHA-512(var16(input) || var16(N) || "Finalize")."""
    return hashlib.sha512(var16(input_) + var16(N_bytes) + b'Finalize').digest()


def _composites(Bpub, C, D):
    seed = hashlib.sha512(var16(encode(Bpub)) + var16(b'Seed-' + CONTEXT)).digest()
    M = IDENTITY; Z = IDENTITY
    for i, (c, dd) in enumerate(zip(C, D)):
        di = hash_to_scalar(var16(seed) + struct.pack('>H', i) + var16(encode(c)) + var16(encode(dd)) + b'Composite')
        M = add(M, mul(di, c)); Z = add(Z, mul(di, dd))
    return M, Z


def _challenge(Bpub, M, Z, t2, t3):
    return hash_to_scalar(var16(encode(Bpub)) + var16(encode(M)) + var16(encode(Z))
                          + var16(encode(t2)) + var16(encode(t3)) + b'Challenge')


def generate_proof(k, Bpub, C, D, r):
    M, _ = _composites(Bpub, C, D)
    Z = mul(k, M)
    t2 = mul(r, B); t3 = mul(r, M)
    c = _challenge(Bpub, M, Z, t2, t3)
    s = (r - c * k) % L
    return c.to_bytes(32, 'little') + s.to_bytes(32, 'little')


def verify_proof(Bpub, C, D, proof):
    if len(C) != len(D) or not C:
        return False
    c = int.from_bytes(proof[:32], 'little'); s = int.from_bytes(proof[32:], 'little')
    if c >= L or s >= L:
        return False
    M, Z = _composites(Bpub, C, D)
    t2 = add(mul(s, B), mul(c, Bpub))
    t3 = add(mul(s, M), mul(c, Z))
    return _challenge(Bpub, M, Z, t2, t3) == c


def _selftest():
    """RFC 9497 Appendix A.1.2 (VOPRF, ristretto255-SHA512), vectors 1 and 2."""
    h = bytes.fromhex
    sk = derive_key_pair(b'\xa3' * 32, b'test key')
    assert sk.to_bytes(32, 'little') == h('e6f73f344b79b379f1a0dd37e07ff62e38d9f71345ce62ae3a9bc60b04ccd909')
    pk = mul(sk, B)
    assert encode(pk) == h('c803e2cc6b05fc15064549b5920659ca4a77b2cca6f04f6b357009335476ad4e')
    blind = int.from_bytes(h('64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706'), 'little')
    r1 = int.from_bytes(h('222a5e897cf59db8145db8d16e597e8facb80ae7d4e26d9881aa6f61d645fc0e'), 'little')
    for inp, bl, ev, pr, out in [
        ('00', '863f330cc1a1259ed5a5998a23acfd37fb4351a793a5b3c090b642ddc439b945',
         'aa8fa048764d5623868679402ff6108d2521884fa138cd7f9c7669a9a014267e',
         'ddef93772692e535d1a53903db24367355cc2cc78de93b3be5a8ffcc6985dd066d4346421d17bf5117a2a1ff0fcb2a759f58a539dfbe857a40bce4cf49ec600d',
         'b58cfbe118e0cb94d79b5fd6a6dafb98764dff49c14e1770b566e42402da1a7da4d8527693914139caee5bd03903af43a491351d23b430948dd50cde10d32b3c'),
        ('5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a', 'cc0b2a350101881d8a4cba4c80241d74fb7dcbfde4a61fde2f91443c2bf9ef0c',
         '60a59a57208d48aca71e9e850d22674b611f752bed48b36f7a91b372bd7ad468',
         '401a0da6264f8cf45bb2f5264bc31e109155600babb3cd4e5af7d181a2c9dc0a67154fabf031fd936051dec80b0b6ae29c9503493dde7393b722eafdf5a50b02',
         '8a9a2f3c7f085b65933594309041fc1898d42d0858e59f90814ae90571a6df60356f4610bf816f27afdd84f47719e480906d27ecd994985890e5f539e7ea74b6'),
    ]:
        P = hash_to_group(h(inp))
        Bl = mul(blind, P)
        assert encode(Bl) == h(bl)
        Z = mul(sk, Bl)
        assert encode(Z) == h(ev)
        assert generate_proof(sk, pk, [Bl], [Z], r1) == h(pr)
        assert verify_proof(pk, [decode(h(bl))], [decode(h(ev))], h(pr))
        assert finalize(h(inp), encode(mul(sk, P))) == h(out)
        assert finalize(h(inp), encode(mul(inv_scalar(blind), Z))) == h(out)


def inv_scalar(x): return pow(x, L - 2, L)


_selftest()
