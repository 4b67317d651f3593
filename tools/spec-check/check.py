"""Independent reimplementation of docs/PROTOCOL.md, checked against docs/test-vectors/keyward-v1.json.

Every deterministic value in the vector file is recomputed from the inputs recorded beside it;
the one randomized value (the envelope's sr25519 signature) is verified. Usage:

    python3 tools/spec-check/check.py [path/to/keyward-v1.json] [--ledger path/to/keyward-ledger-v1.json]
                                      [--derive keys-derive-output.json ...]

The ledger vectors (§16, checked by ledger.py) are read from keyward-ledger-v1.json next to
keyward-v1.json unless --ledger names another file.

It shares no code with the Rust workspace: X25519 and ChaCha20-Poly1305 come from PyCA
`cryptography`; ristretto255, merlin and schnorrkel verification are written here from their
specifications and checked against their published known-answer vectors first."""
import json, hashlib, hmac, os, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as p256
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives import hashes
from cryptography.exceptions import InvalidTag, InvalidSignature

import r255, sr25519, ledger

args = sys.argv[1:]
derive_files = []
while '--derive' in args:
    i = args.index('--derive'); derive_files.append(args[i + 1]); del args[i:i + 2]
LEDGER_PATH = None
if '--ledger' in args:
    i = args.index('--ledger'); LEDGER_PATH = args[i + 1]; del args[i:i + 2]
PATH = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'test-vectors', 'keyward-v1.json')
LEDGER_PATH = LEDGER_PATH or os.path.join(os.path.dirname(os.path.abspath(PATH)), 'keyward-ledger-v1.json')
V = json.load(open(PATH))

checked = []
def ok(what, cond):
    if not cond:
        raise SystemExit(f'FAIL: {what}')
    checked.append(what)
    print(f'  ok  {what}')

h = lambda s: bytes.fromhex(s[2:] if s.startswith('0x') else s)
def var8(b): return bytes([len(b)]) + b
def var16(b): return struct.pack('>H', len(b)) + b
def var32(b): return struct.pack('>I', len(b)) + b
def u64(x): return struct.pack('>Q', x)
def u16(x): return struct.pack('>H', x)

# ---- §8.1 KDF, RFC 5869 ----------------------------------------------------------------------
def hkdf_extract(salt, ikm): return hmac.new(salt, ikm, hashlib.sha256).digest()
def hkdf_expand(prk, info, n):
    out = b''; t = b''; i = 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest(); out += t; i += 1
    return out[:n]
def kdf(parent, label, ctx): return hkdf_expand(hkdf_extract(b'', parent), var16(label) + ctx, 32)

# ---- XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) ---------------------------------------------
def _rotl(v, c): return ((v << c) & 0xffffffff) | (v >> (32 - c))
def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] ^= s[a]; s[d] = _rotl(s[d], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] ^= s[c]; s[b] = _rotl(s[b], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] ^= s[a]; s[d] = _rotl(s[d], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] ^= s[c]; s[b] = _rotl(s[b], 7)
def hchacha20(key, nonce16):
    s = list(struct.unpack('<4I', b'expand 32-byte k')) + list(struct.unpack('<8I', key)) + list(struct.unpack('<4I', nonce16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack('<8I', *(s[0:4] + s[12:16]))
def xseal(key, n24, pt, aad): return ChaCha20Poly1305(hchacha20(key, n24[:16])).encrypt(b'\0' * 4 + n24[16:], pt, aad)
def xopen(key, n24, ct, aad): return ChaCha20Poly1305(hchacha20(key, n24[:16])).decrypt(b'\0' * 4 + n24[16:], ct, aad)
# draft-irtf-cfrg-xchacha §2.2.1 HChaCha20 test vector
assert hchacha20(bytes(range(32)), h('000000090000004a0000000031415927')).hex() == \
    '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'

# ---- §4.1 RFC 9180 DHKEM(X25519, HKDF-SHA256) ------------------------------------------------
KEM = b'KEM' + u16(0x20)
SUITE = b'HPKE' + u16(0x20) + u16(1) + u16(3)
def labeled_extract(salt, label, ikm, suite): return hkdf_extract(salt, b'HPKE-v1' + suite + label + ikm)
def labeled_expand(prk, label, info, n, suite): return hkdf_expand(prk, u16(n) + b'HPKE-v1' + suite + label + info, n)
def x25519_pub(sk): return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
def x25519(sk, pk): return X25519PrivateKey.from_private_bytes(sk).exchange(X25519PublicKey.from_public_bytes(pk))
def derive_kp(ikm):
    prk = labeled_extract(b'', b'dkp_prk', ikm, KEM)
    sk = labeled_expand(prk, b'sk', b'', 32, KEM)
    return sk, x25519_pub(sk)
def hpke_key_schedule(dh, enc, pk_r, info):
    eae = labeled_extract(b'', b'eae_prk', dh, KEM)
    ss = labeled_expand(eae, b'shared_secret', enc + pk_r, 32, KEM)
    ksc = b'\x00' + labeled_extract(b'', b'psk_id_hash', b'', SUITE) + labeled_extract(b'', b'info_hash', info, SUITE)
    secret = labeled_extract(ss, b'secret', b'', SUITE)
    return labeled_expand(secret, b'key', ksc, 32, SUITE), labeled_expand(secret, b'base_nonce', ksc, 12, SUITE)
def hpke_seal(pk_r, info, aad, pt, ikm_e):
    sk_e, enc = derive_kp(ikm_e)
    key, nonce = hpke_key_schedule(x25519(sk_e, pk_r), enc, pk_r, info)
    return enc, ChaCha20Poly1305(key).encrypt(nonce, pt, aad)
def hpke_open(sk_r, enc, info, aad, ct):
    key, nonce = hpke_key_schedule(x25519(sk_r, enc), enc, x25519_pub(sk_r), info)
    return ChaCha20Poly1305(key).decrypt(nonce, ct, aad)

print(f'checking {PATH}')

# ---- §2.1 identity ---------------------------------------------------------------------------
ident = V['identity']
user_pub = sr25519.public_from_seed(h(ident['seed']))
ok('identity.sr25519Public = sr25519(seed)', user_pub == h(ident['sr25519Public']))

# ---- §6.3, §8.2, §8.3, §6.6: MasterKey, VOPRF input and output -------------------------------
ck = V['clusterKey']
k = r255.derive_key_pair(b'\x42' * 32, b'keyward test vectors')
ok('clusterKey.masterKey = RFC 9497 DeriveKeyPair(0x42*32, "keyward test vectors")', k.to_bytes(32, 'little') == h(ck['masterKey']))
ok('clusterKey.masterPublicKey = masterKey·G', r255.encode(r255.mul(k, r255.B)) == h(ck['masterPublicKey']))
inp = var16(b'keyward/v1/cluster-key') + u64(ck['epoch']) + var16(ck['cluster'].encode()) + u64(ck['generation'])
ok('clusterKey.voprfInput (§8.3)', inp == h(ck['voprfInput']))
N = r255.encode(r255.mul(k, r255.hash_to_group(inp)))
ok('clusterKey.voprfOutput = Finalize(input, s_e·HashToGroup(input)) (§6.6)', r255.finalize(inp, N) == h(ck['voprfOutput']))

# Threshold evaluation of the public input (§7.6): a 2-of-3 dealing of the same key, partials of
# HashToGroup(input) with DLEQ proofs, Lagrange-combined, Finalize: the same output.
P = r255.hash_to_group(inp)
a1 = 0x1234567 % r255.L
shares = {i: (k + a1 * i) % r255.L for i in (1, 2, 3)}
Y = {i: r255.mul(s, r255.B) for i, s in shares.items()}
parts = {i: r255.mul(s, P) for i, s in shares.items()}
for i in (1, 3):
    pr = r255.generate_proof(shares[i], Y[i], [P], [parts[i]], 1000 + i)
    assert r255.verify_proof(Y[i], [P], [parts[i]], pr)
lam = lambda i, S: (lambda num, den: num * r255.inv_scalar(den) % r255.L)(
    __import__('math').prod((0 - j) for j in S if j != i) % r255.L, __import__('math').prod((i - j) for j in S if j != i) % r255.L)
Zc = r255.add(r255.mul(lam(1, [1, 3]), parts[1]), r255.mul(lam(3, [1, 3]), parts[3]))
ok('threshold 2-of-3 evaluation of the public input gives the same voprfOutput (§7.6)', r255.finalize(inp, r255.encode(Zc)) == h(ck['voprfOutput']))

# ---- §8.4 cluster seed and keys ----------------------------------------------------------------
seed = kdf(h(ck['voprfOutput']), b'keyward/v1/cluster-seed', inp)
ok('clusterKey.clusterSeed (§8.4)', seed == h(ck['clusterSeed']))
ok('clusterKey.clusterSr25519Public', sr25519.public_from_seed(kdf(seed, b'keyward/v1/cluster/sr25519', b'')) == h(ck['clusterSr25519Public']))
_, cl_x = derive_kp(kdf(seed, b'keyward/v1/cluster/x25519', b''))
ok('clusterKey.clusterX25519Public', cl_x == h(ck['clusterX25519Public']))

# ---- §8.5, §8.6 ContractKey and context ---------------------------------------------------------
ct = V['contractKey']
root = kdf(seed, b'keyward/v1/contract', var16(ct['contract'].encode()))
ok('contractKey.sr25519Public', sr25519.public_from_seed(kdf(root, b'keyward/v1/contract/sr25519', b'')) == h(ct['sr25519Public']))
csk, cpk = derive_kp(kdf(root, b'keyward/v1/contract/x25519', b''))
ok('contractKey.x25519Secret (RFC 9180 skRm, unclamped)', csk == h(ct['x25519Secret']))
ok('contractKey.x25519Public', cpk == h(ct['x25519Public']))
ctx = var16(b'keyward/v1/contract-context') + u64(ck['epoch']) + var16(ck['cluster'].encode()) + u64(ck['generation']) + var16(ct['contract'].encode())
ok('contractKey.contextBytes (§8.6)', ctx == h(ct['contextBytes']))

# ---- §9 state record --------------------------------------------------------------------------
st = ct['state']
skey = kdf(root, b'keyward/v1/contract/state', b''); nkey = kdf(root, b'keyward/v1/contract/state-nonce', b'')
aad = var16(b'keyward/v1/contract-state') + var16(ct['contract'].encode()) + var16(st['record'].encode()) + u64(st['version'])
nonce = hmac.new(nkey, var32(aad) + st['plaintext'].encode(), hashlib.sha256).digest()[:24]
ok('contractKey.state.sealed (§9, synthetic nonce)', nonce + xseal(skey, nonce, st['plaintext'].encode(), aad) == h(st['sealed']))

# ---- §5 envelope (contract input, §10) -------------------------------------------------------------
ci = V['contractInput']
env = h(ci['envelope'])
sender_pub = sr25519.public_from_seed(h(ci['senderSeed']))
purpose = b'contract-input'
info = ledger.envelope_info(purpose)
hpke_aad = ledger.hpke_aad(ctx, sender_pub)              # §5.2: var32(aad) || sender (32)
enc, ect = hpke_seal(cpk, info, hpke_aad, ci['plaintext'].encode(), h(ci['ikmE']))
body = ledger.encode_envelope(purpose, sender_pub, cpk, enc, ctx, ect, b'')
ok('contractInput.envelope: every byte before the signature (HPKE seal with ikmE)', env[:-64] == body)
ok(f'contractInput.envelope length = 174 + L + A + C = {174 + len(purpose) + len(ctx) + len(ect)}', len(env) == 174 + len(purpose) + len(ctx) + len(ect))
pt = hpke_open(h(ct['x25519Secret']), enc, info, hpke_aad, ect)
ok('envelope opens with contractKey.x25519Secret to the plaintext', pt == ci['plaintext'].encode())
def refused(aad_):
    try:
        hpke_open(h(ct['x25519Secret']), enc, info, aad_, ect); return False
    except InvalidTag:
        return True
ok('envelope does not open with the old AEAD aad (context alone)', refused(ctx))
ok('envelope does not open with another sender in the AEAD aad', refused(var32(ctx) + h(ident['sr25519Public'])[:31] + b'\0'))
transcript = ledger.envelope_transcript(purpose, cpk, enc, ctx, ect)
ok('envelope signature verifies (sr25519, context keyward/v1/envelope, §5.3)', sr25519.verify(sender_pub, b'keyward/v1/envelope', transcript, env[-64:]))
ok('envelope signature refused under another context', not sr25519.verify(sender_pub, b'keyward/v1/contract-keys', transcript, env[-64:]))

# ---- §11 epoch chain -----------------------------------------------------------------------------
ec = V['epochChain']
g = ledger.checksum_genesis(ec['chainId'].encode())
ok('epochChain.genesis', g == h(ec['genesis']))
S = h(ck['masterPublicKey'])
members = [(i, S, sr25519.public_from_seed(h(sd))) for i, sd in zip(ec['epoch0']['members'], ec['gatekeeperSeeds'])]  # classic: Y_i = S_e
ok('epochChain.epoch0.checksum', ledger.epoch_checksum(g, 0, S, ec['epoch0']['threshold'], members) == h(ec['epoch0']['checksum']))

# ---- §12 sealed blob ------------------------------------------------------------------------------
sb = V['sealedBlob']
blob = h(sb['blob'])
m = h(sb['measurement'])
kseal = hkdf_expand(hkdf_extract(b'', h(sb['sealingKey'])), var16(b'keyward/v2/seal') + m, 32)
hdr = b'KWSB\x02' + var8(sb['purpose'].encode()) + var8(sb['chainId'].encode()) + m + u64(sb['counter'])
n24 = b'\x99' * 24
ok('sealedBlob.blob (fixed nonce 0x99*24; measurement and counter in the header and the key)', blob == hdr + n24 + var32(xseal(kseal, n24, seed, hdr)))
ok('sealedBlob opens to clusterSeed', xopen(kseal, n24, blob[len(hdr) + 24 + 4:], hdr) == seed)
sy = V['sealedBlobSynthetic']
m = h(sy['measurement'])
kseal = hkdf_expand(hkdf_extract(b'', h(sy['sealingKey'])), var16(b'keyward/v2/seal') + m, 32)
knonce = hkdf_expand(hkdf_extract(b'', h(sy['sealingKey'])), var16(b'keyward/v2/seal-nonce') + m, 32)
hdr = b'KWSB\x02' + var8(sy['purpose'].encode()) + var8(sy['chainId'].encode()) + m + u64(sy['counter'])
pt = sy['plaintext'].encode()
n24 = hmac.new(knonce, var32(hdr) + pt, hashlib.sha256).digest()[:24]
ok('sealedBlobSynthetic.blob (nonce = HMAC of header and plaintext)', h(sy['blob']) == hdr + n24 + var32(xseal(kseal, n24, pt, hdr)))
mf = V['sealedManifest']
m = h(mf['measurement'])
ikm = hkdf_extract(b'', h(mf['sealingKey']))
kseal, knonce = (hkdf_expand(ikm, var16(label) + m, 32) for label in (b'keyward/v2/seal', b'keyward/v2/seal-nonce'))
kver = hkdf_expand(ikm, var16(b'keyward/v2/seal-version') + m, 32)
digest = bytes(32)
for item, blob in zip(mf['items'], (h(sy['blob']), h(mf['items'][1]['blob']))):
    tag = hmac.new(kver, var8(mf['itemPurpose'].encode()) + var16(h(item['name'])) + var32(blob), hashlib.sha256).digest()
    digest = bytes(a ^ b for a, b in zip(digest, tag))
pt = b'KWMF\x01' + var8(mf['itemPurpose'].encode()) + u64(len(mf['items'])) + digest
hdr = b'KWSB\x02' + var8(b'manifest') + var8(mf['chainId'].encode()) + m + u64(mf['counter'])
n24 = hmac.new(knonce, var32(hdr) + pt, hashlib.sha256).digest()[:24]
ok('sealedManifest.blob (§12.1: XOR of keyed tags of the items\' sealed bytes, sealed synthetic)', h(mf['blob']) == hdr + n24 + var32(xseal(kseal, n24, pt, hdr)))

# ---- §13 report data ---------------------------------------------------------------------------------
ev = V['devEvidence']
_, chpk = derive_kp(b'\x66' * 32)
ok('devEvidence bound x25519 key = DeriveKeyPair(0x66*32)', chpk == h(ev['boundKeys'][1].split()[1]))
rd = hashlib.sha512(var16(b'keyward/v1/report-data') + var16(ev['nonce'].encode()) + u16(2)
                    + var8(b'sr25519') + var16(user_pub) + var8(b'x25519') + var16(chpk)).digest()
ok('devEvidence.reportData', rd == h(ev['reportData']))

# ---- §13.4 tpm-quote evidence: an ECDSA P-256 quote of the report data ---------------------------
tq = V['tpmQuoteEvidence']
ak_pub = p256.derive_private_key(int.from_bytes(h(tq['akScalar']), 'big'), p256.SECP256R1()).public_key()
ak_sec1 = ak_pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
ok('tpmQuoteEvidence.akSec1 = the scalar times the P-256 base point', ak_sec1 == h(tq['akSec1']))
ok('tpmQuoteEvidence.akFingerprint = SHA-256(SEC1 point)', hashlib.sha256(ak_sec1).digest() == h(tq['akFingerprint']))
evb = h(tq['evidence'])
er = ledger.Reader(evb)
head_ok = er.take(4) == b'KWAT' and er.u8() == 1 and er.u8() == 2
ev_key, ev_rd = er.take(65), er.take(64)
ev_attest = er.take(er.u16())
ev_r, ev_s = er.take(32), er.take(32)
er.end()
ok('tpmQuoteEvidence.evidence framing: KWAT 1, kind 2, AK, report data, var16(attest), r, s',
   head_ok and ev_key == ak_sec1 and ev_rd == rd and ev_attest == h(tq['attest']))
try:
    ak_pub.verify(encode_dss_signature(int.from_bytes(ev_r, 'big'), int.from_bytes(ev_s, 'big')),
                  ev_attest, p256.ECDSA(hashes.SHA256()))
    sig_ok = True
except InvalidSignature:
    sig_ok = False
ok('tpmQuoteEvidence signature: ECDSA P-256 / SHA-256 over TPMS_ATTEST', sig_ok)
P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
ok('tpmQuoteEvidence signature is low-S (s <= n/2: one encoding per quote)', int.from_bytes(ev_s, 'big') <= P256_N // 2)
ar = ledger.Reader(ev_attest)
magic, st = ar.u32(), ar.u16()
ar.take(ar.u16())                         # qualifiedSigner
extra = ar.take(ar.u16())
ar.take(8 + 4 + 4 + 1 + 8)                # clockInfo, firmwareVersion
sel_start = len(ev_attest) - ar.remaining()
for _ in range(ar.u32()):
    ar.u16(); ar.take(ar.u8())
selection = ev_attest[sel_start:len(ev_attest) - ar.remaining()]
pcr_digest = ar.take(ar.u16())
ar.end()
ok('tpmQuoteEvidence attest is a TPM-generated quote whose extraData = SHA-256(report data)',
   magic == 0xff544347 and st == 0x8018 and extra == hashlib.sha256(rd).digest())
ok('tpmQuoteEvidence.measurement = SHA-256(var16(label) || TPML_PCR_SELECTION || pcrDigest)',
   hashlib.sha256(var16(b'keyward/v1/tpm-measurement') + selection + pcr_digest).digest() == h(tq['measurement']))

# ---- §18.4 a user's reply channel key (the constant is asserted by core/node/src/user.rs too) -----
_, user_channel = derive_kp(var16(b'keyward/v1/user-channel') + b'\x07' * 32)
ok('user reply channel = DeriveKeyPair(var16(label) || seed 0x07*32)',
   user_channel == h('db9924f915450b6fb0f3545b7f661881101a983ecad8526f0b060b4ff7ee6f35'))

# ---- §16 the ledger (ledger.py) --------------------------------------------------------------------
ledger.run(ok, LEDGER_PATH)

# ---- optional: `keyward keys derive` output (Appendix B) ---------------------------------------------
for path in derive_files:
    D = json.load(open(path)); e = D['evaluation']
    print(f'checking keys derive output {path}')
    dinp = var16(b'keyward/v1/cluster-key') + u64(D['epoch']) + var16(D['cluster'].encode()) + u64(D['generation'])
    ok('evaluation.input = the §8.3 input', h(e['input']) == dinp)
    Pd = r255.hash_to_group(dinp)
    ok('evaluation.inputElement = HashToGroup(input)', h(e['inputElement']) == r255.encode(Pd))
    Zd = r255.decode(h(e['evaluatedElement']))
    ok('evaluation.proof verifies against masterPublicKey', r255.verify_proof(r255.decode(h(D['masterPublicKey'])), [Pd], [Zd], h(e['proof'])))
    # In classic mode evaluatedElement = s_e·HashToGroup(input): Finalize of it IS the VOPRF output.
    leaked = kdf(r255.finalize(dinp, h(e['evaluatedElement'])), b'keyward/v1/cluster-seed', dinp)
    same = sr25519.public_from_seed(kdf(leaked, b'keyward/v1/cluster/sr25519', b'')) == h(D['clusterKey']['sr25519'])
    print(f'  !!  cluster seed recomputed from the public evaluation.evaluatedElement: {"YES (leak)" if same else "no"}')
    if 'secrets' in D:
        print(f'  !!  equals secrets.clusterSeed: {leaked == h(D["secrets"]["clusterSeed"])}')

print(f'ALL OK: {len(checked)} checks')
