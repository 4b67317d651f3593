"""Ledger checks (docs/PROTOCOL.md §16, with §1, §5, §7.3, §8.2, §11, §13):
docs/test-vectors/keyward-ledger-v1.json.

Written from PROTOCOL.md alone, like check.py, which calls `run(ok, path)` and shares the §5
envelope and §11 checksum functions defined here. Every byte string and hash in the vector file
is rebuilt from the fields recorded beside it; the sr25519 signatures (the entries', the
evidence's and the epoch-secret envelope's) are randomized, so they are verified, not reproduced.
The envelope's ciphertext is randomized too and the recipient's channel secret is not in the
file, so the envelope is checked for its framing, fields and signature, not opened."""
import hashlib, ipaddress, json, re, struct

import r255, sr25519

# ---- §1.1 codec ------------------------------------------------------------------------------
h = lambda s: bytes.fromhex(s[2:] if s.startswith('0x') else s)
def u8(x): return struct.pack('>B', x)
def u16(x): return struct.pack('>H', x)
def u64(x): return struct.pack('>Q', x)
def var8(b): assert len(b) <= 0xff; return u8(len(b)) + b
def var16(b): assert len(b) <= 0xffff; return u16(len(b)) + b
def var32(b): assert len(b) <= 0xffffffff; return struct.pack('>I', len(b)) + b


class Malformed(Exception):
    pass


class Reader:
    """§1.1: check the announced length against the field's maximum and the bytes present."""
    def __init__(self, b): self.b = b; self.i = 0
    def take(self, n):
        if n > len(self.b) - self.i:
            raise Malformed(f'need {n} bytes at {self.i}, have {len(self.b) - self.i}')
        out = self.b[self.i:self.i + n]; self.i += n; return out
    def u8(self): return self.take(1)[0]
    def u16(self): return struct.unpack('>H', self.take(2))[0]
    def u32(self): return struct.unpack('>I', self.take(4))[0]
    def u64(self): return struct.unpack('>Q', self.take(8))[0]
    def remaining(self): return len(self.b) - self.i
    def var(self, width, maximum):
        n = {1: self.u8, 2: self.u16, 4: self.u32}[width]()
        if n > maximum:
            raise Malformed(f'length {n} over maximum {maximum}')
        return self.take(n)
    def end(self):
        if self.i != len(self.b):
            raise Malformed(f'{len(self.b) - self.i} trailing bytes')


# ---- §1.4 ids ----------------------------------------------------------------------------------
ID_RE = re.compile(rb'[A-Za-z0-9._-]{1,64}')
def is_id(b): return ID_RE.fullmatch(b) is not None


# ---- §2.3 signature encoding -------------------------------------------------------------------
def well_formed_sig(sig):
    if len(sig) != 64 or not sig[63] & 0x80:
        return False
    s = bytearray(sig[32:]); s[31] &= 0x7f
    return int.from_bytes(s, 'little') < r255.L


# ---- §5 envelopes (check.py's contract-input envelope uses these too) --------------------------
ENVELOPE_CTX = b'keyward/v1/envelope'
PURPOSES = (b'epoch-secret', b'cluster-key', b'contract-input', b'contract-reply')
MAX_AAD_LEN = 65536
MAX_PLAINTEXT_LEN = 1 << 24
TAG_LEN = 16


def envelope_info(purpose): return b'keyward/v1/envelope/' + purpose
def hpke_aad(aad, sender): return var32(aad) + sender


def envelope_transcript(purpose, recipient, enc, aad, ct):
    """§5.3: what the sender signs (the wire aad, not hpke_aad; the sender is not in it)."""
    return var8(purpose) + recipient + enc + var32(aad) + var32(ct)


def encode_envelope(purpose, sender, recipient, enc, aad, ct, sig):
    """§5.4 wire layout."""
    return b'KWEV' + b'\x01' + var8(purpose) + sender + recipient + enc + var32(aad) + var32(ct) + sig


def decode_envelope(b):
    """§5.6 Envelope::from_bytes: header, a known purpose (L <= 32), a canonical sender point,
    the aad and ciphertext limits, a ciphertext of at least 16 bytes, a well-formed signature,
    no trailing bytes."""
    r = Reader(b)
    if r.take(4) != b'KWEV' or r.u8() != 1:
        raise Malformed('envelope magic/version')
    purpose = r.var(1, 32)
    if purpose not in PURPOSES:
        raise Malformed('envelope purpose')
    sender = r.take(32)
    if r255.decode(sender) is None:
        raise Malformed('envelope sender not canonical ristretto255')
    recipient = r.take(32); enc = r.take(32)
    aad = r.var(4, MAX_AAD_LEN); ct = r.var(4, MAX_PLAINTEXT_LEN + TAG_LEN)
    if len(ct) < TAG_LEN:
        raise Malformed('envelope ciphertext shorter than the tag')
    sig = r.take(64)
    if not well_formed_sig(sig):
        raise Malformed('envelope signature')
    r.end()
    return dict(purpose=purpose, sender=sender, recipient=recipient, enc=enc, aad=aad, ct=ct, signature=sig)


def envelope_verify_sender(e):
    """§5.6 check 3 alone (Envelope::verify_sender): anyone can run it without the key."""
    return sr25519.verify(e['sender'], ENVELOPE_CTX,
                          envelope_transcript(e['purpose'], e['recipient'], e['enc'], e['aad'], e['ct']), e['signature'])


# ---- §11 epoch checksum chain, §7.3 classic committee (check.py's epochChain uses these too) ---
def checksum_genesis(chain_id):
    return hashlib.sha256(var16(b'keyward/v1/epoch-chain/genesis') + var16(chain_id)).digest()


def epoch_checksum(prev, epoch, master, threshold, members):
    """§11 c_e; members: [(share index, Y_index, gatekeeper sr25519 key)], hashed by ascending index."""
    m = var16(b'keyward/v1/epoch-chain') + prev + u64(epoch) + master + u16(threshold) + u16(len(members))
    for i, y, gk in sorted(members):
        m += u16(i) + y + gk
    return hashlib.sha256(m).digest()


def classic_members(master, gatekeepers):
    """§7.3 classic mode (t = 1): indices 1..=n in the given order, every Y_i = S_e."""
    return [(i, master, gk) for i, gk in enumerate(gatekeepers, 1)]


# ---- §13.1, §13.2, §13.3 evidence and policy ---------------------------------------------------
def report_data(keys, nonce):
    """keys: [(kind label, key bytes)], in the order given."""
    if len(nonce) > 1024 or len(keys) > 16:
        raise ValueError('report data: nonce over 1024 bytes or more than 16 keys')
    m = var16(b'keyward/v1/report-data') + var16(nonce) + u16(len(keys))
    for kind, key in keys:
        m += var8(kind) + var16(key)
    return hashlib.sha512(m).digest()


def parse_evidence(b):
    """§13.2 framing: magic, version, kind, platform key, measurement, report data, signature."""
    r = Reader(b)
    if r.take(4) != b'KWAT':
        raise Malformed('evidence magic')
    if r.u8() != 1:
        raise Malformed('evidence version')
    ev = dict(kind=r.u8(), platform=r.take(32), measurement=r.take(32), report_data=r.take(64), signature=r.take(64))
    r.end()
    return ev


def evidence_signed(ev): return u8(ev['kind']) + ev['measurement'] + ev['report_data']


def evidence_verify(ev, policy, keys, nonce):
    """§13.3 Evidence::verify, in its order of checks; returns None if accepted, else the refusal."""
    if ev['kind'] != 1:
        return 'UnknownKind'
    if not policy['accept_insecure_dev']:
        return 'InsecureNotAccepted'
    if policy['platforms'] and ev['platform'] not in policy['platforms']:
        return 'UntrustedPlatform'
    if not sr25519.verify(ev['platform'], b'keyward/v1/evidence', evidence_signed(ev), ev['signature']):
        return 'BadSignature'
    try:
        if report_data(keys, nonce) != ev['report_data']:
            return 'ReportDataMismatch'
    except ValueError:
        return 'ReportDataMismatch'
    if policy['measurements'] and ev['measurement'] not in policy['measurements']:
        return 'MeasurementNotAllowed'
    return None


MAX_POLICY_ENTRIES = 64
def policy_from_json(p):
    return dict(accept_insecure_dev=p['acceptInsecureDev'],
                measurements=[h(x) for x in p['allowedMeasurements']],
                platforms=[h(x) for x in p['trustedDevPlatforms']],
                tpm_keys=[h(x) for x in p['trustedTpmKeys']],
                vendor=None if p['vendor'] is None else dict(
                    platforms=p['vendor']['platforms'],
                    measurements=[h(x) for x in p['vendor']['measurements']],
                    minimum_tcb=p['vendor']['minimumTcb'],
                    accept_unrated=p['vendor']['acceptUnrated'],
                    max_age_secs=p['vendor']['maxAgeSecs']))


VENDOR_PLATFORMS = ['sgx', 'tdx', 'nitro', 'sev-snp']   # bit i of the platform set
TCB_STATUSES = ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded',
                'ConfigurationAndSWHardeningNeeded', 'TDRelaunchAdvised',
                'TDRelaunchAdvisedConfigurationNeeded', 'OutOfDate',
                'OutOfDateConfigurationNeeded', 'Revoked', 'Unrated']


def encode_vendor_policy(v):
    """§13.3: u8(platform bits) || u8(minimum TCB) || u8(accept_unrated) || u64(max age)
    || u16(m) || m × var8(measurement), measurements sorted, without duplicates."""
    bits = sum(1 << VENDOR_PLATFORMS.index(p) for p in set(v['platforms']))
    assert bits
    ms = sorted(set(v['measurements']))
    assert len(ms) <= MAX_POLICY_ENTRIES and all(0 < len(m) <= 64 for m in ms)
    return (u8(bits) + u8(TCB_STATUSES.index(v['minimum_tcb'])) + u8(1 if v['accept_unrated'] else 0)
            + u64(v['max_age_secs']) + u16(len(ms)) + b''.join(var8(m) for m in ms))


def decode_vendor_policy(r):
    bits = r.u8()
    if bits == 0 or bits >> len(VENDOR_PLATFORMS):
        raise Malformed('vendor platforms')
    tcb = r.u8()
    if tcb >= len(TCB_STATUSES):
        raise Malformed('minimum TCB status')
    unrated = r.u8()
    if unrated not in (0, 1):
        raise Malformed('accept unrated')
    max_age = r.u64()
    n = r.u16()
    if n > MAX_POLICY_ENTRIES:
        raise Malformed('vendor measurements')
    ms = []
    for _ in range(n):
        m = r.take(r.u8())
        if len(m) > 64 or (ms and ms[-1] >= m):
            raise Malformed('vendor measurements')
        ms.append(m)
    return dict(platforms=[p for i, p in enumerate(VENDOR_PLATFORMS) if bits >> i & 1],
                measurements=ms, minimum_tcb=TCB_STATUSES[tcb], accept_unrated=bool(unrated),
                max_age_secs=max_age)


def encode_policy(p):
    """§13.3: the encoder sorts and removes duplicates."""
    ms = sorted(set(p['measurements'])); ps = sorted(set(p['platforms'])); ts = sorted(set(p['tpm_keys']))
    assert max(len(ms), len(ps), len(ts)) <= MAX_POLICY_ENTRIES
    vendor = u8(0) if p['vendor'] is None else u8(1) + encode_vendor_policy(p['vendor'])
    return (u8(1 if p['accept_insecure_dev'] else 0) + u16(len(ms)) + b''.join(ms)
            + u16(len(ps)) + b''.join(ps) + u16(len(ts)) + b''.join(ts) + vendor)


def decode_policy(r):
    """§13.3: the decoder refuses anything but 0|1, strictly ascending lists of at most 64."""
    flag = r.u8()
    if flag not in (0, 1):
        raise Malformed('policy flag')
    lists = []
    for _ in range(3):
        n = r.u16()
        if n > MAX_POLICY_ENTRIES:
            raise Malformed('policy list too long')
        items = [r.take(32) for _ in range(n)]
        if any(a >= b for a, b in zip(items, items[1:])):
            raise Malformed('policy list not strictly ascending')
        lists.append(items)
    vendor_flag = r.u8()
    if vendor_flag not in (0, 1):
        raise Malformed('vendor policy flag')
    vendor = decode_vendor_policy(r) if vendor_flag else None
    return dict(accept_insecure_dev=bool(flag), measurements=lists[0], platforms=lists[1], tpm_keys=lists[2],
                vendor=vendor)


def at_least_as_strict(a, b):
    """§13.3: A accepts dev only if B does; per allow-list, B's is empty or A's is non-empty and
    ⊆ B's; A trusts only TPM keys B trusts (an empty TPM list trusts none)."""
    if a['accept_insecure_dev'] and not b['accept_insecure_dev']:
        return False
    if not set(a['tpm_keys']) <= set(b['tpm_keys']):
        return False
    for key in ('measurements', 'platforms'):
        if b[key] and not (a[key] and set(a[key]) <= set(b[key])):
            return False
    # A vendor part: absent is strictest; otherwise B needs one no stricter in every field.
    if a['vendor'] is not None:
        va, vb = a['vendor'], b['vendor']
        if vb is None or not (set(va['platforms']) <= set(vb['platforms'])
                              and set(va['measurements']) <= set(vb['measurements'])
                              and TCB_STATUSES.index(va['minimum_tcb']) <= TCB_STATUSES.index(vb['minimum_tcb'])
                              and (not va['accept_unrated'] or vb['accept_unrated'])
                              and va['max_age_secs'] <= vb['max_age_secs']):
            return False
    return True


# ---- §16.1 entries -----------------------------------------------------------------------------
LEDGER_CTX = b'keyward/v1/ledger-entry'
MAX_BODY_LEN = 1 << 20
KNOWN_KINDS = set(range(26))  # PROTOCOL §16.3: kinds 0–25


def encode_entry(height, parent, author, seq, kind, body, sig):
    return b'KWLE' + b'\x01' + u64(height) + parent + author + u64(seq) + u8(kind) + var32(body) + sig


def entry_hash(entry): return hashlib.sha256(var16(b'keyward/v1/ledger/entry-hash') + entry).digest()


def decode_entry(b):
    """§16.1 Entry::from_bytes: magic and version, author key, known kind, body length,
    well-formed signature, no trailing bytes."""
    r = Reader(b)
    if r.take(4) != b'KWLE' or r.u8() != 1:
        raise Malformed('entry magic/version')
    height = r.u64(); parent = r.take(32); author = r.take(32)
    if r255.decode(author) is None:
        raise Malformed('author not canonical ristretto255')
    seq = r.u64(); kind = r.u8()
    if kind not in KNOWN_KINDS:
        raise Malformed('unknown_kind')
    body = r.var(4, MAX_BODY_LEN)
    sig = r.take(64)
    if not well_formed_sig(sig):
        raise Malformed('signature')
    r.end()
    return dict(height=height, parent=parent, author=author, seq=seq, kind=kind, body=body, signature=sig)


# ---- §16.2 genesis body ------------------------------------------------------------------------
def encode_genesis_body(chain_id, council, threshold, p, codes, gk_policy, wk_policy):
    return (var8(chain_id) + u16(len(council)) + b''.join(council)
            + u16(threshold) + u16(p['bootstrapGatekeepers'])
            + u64(p['minGatekeeperStake']) + u64(p['minWorkerStake']) + u16(p['slashBps'])
            + u64(p['maxProposalTtl']) + u16(p['maxClusterSize']) + u16(p['keyThreshold'])
            + u64(p['refreshInterval'])
            + u16(len(codes)) + b''.join(var8(c) for c in codes)
            + encode_policy(gk_policy) + encode_policy(wk_policy))


def decode_genesis_body(b):
    r = Reader(b)
    g = dict(chain_id=r.var(1, 64))
    n = r.u16(); g['council'] = [r.take(32) for _ in range(n)]
    g['threshold'] = r.u16(); g['bootstrap_gatekeepers'] = r.u16()
    g['min_gatekeeper_stake'] = r.u64(); g['min_worker_stake'] = r.u64(); g['slash_bps'] = r.u16()
    g['max_proposal_ttl'] = r.u64(); g['max_cluster_size'] = r.u16(); g['key_threshold'] = r.u16()
    g['refresh_interval'] = r.u64()
    c = r.u16(); g['codes'] = [r.var(1, 64) for _ in range(c)]
    g['gk_policy'] = decode_policy(r); g['wk_policy'] = decode_policy(r)
    r.end()
    return g


def genesis_errors(g, author):
    """§16.2 rule 4 (all invalid_genesis), plus the id and ordering rules stated above the list."""
    errs = []
    n = len(g['council'])
    if not is_id(g['chain_id']): errs.append('chain id is not an id (§1.4)')
    if not all(is_id(c) for c in g['codes']): errs.append('contract code is not an id (§1.4)')
    if any(a >= b for a, b in zip(g['council'], g['council'][1:])): errs.append('council not strictly ascending')
    if any(a >= b for a, b in zip(g['codes'], g['codes'][1:])): errs.append('contract codes not strictly ascending')
    if not 1 <= n <= 64: errs.append('council size')
    if author not in g['council']: errs.append('author not in council')
    if not 1 <= g['threshold'] <= n: errs.append('threshold')
    if not g['bootstrap_gatekeepers'] >= 1: errs.append('bootstrap_gatekeepers')
    if not 1 <= g['slash_bps'] <= 10000: errs.append('slash_bps')
    if not g['max_proposal_ttl'] >= 1: errs.append('max_proposal_ttl')
    if not 1 <= g['max_cluster_size'] <= 1024: errs.append('max_cluster_size')
    if not 1 <= g['key_threshold'] <= g['bootstrap_gatekeepers'] or (g['key_threshold'] > 1 and g['bootstrap_gatekeepers'] > 64): errs.append('key_threshold')
    if g['refresh_interval'] != 0 and (g['key_threshold'] == 1 or g['refresh_interval'] < 64): errs.append('refresh_interval')
    if not g['min_gatekeeper_stake'] > g['min_worker_stake']: errs.append('stake order')
    if not 1 <= len(g['codes']) <= 16: errs.append('contract code count')
    if not at_least_as_strict(g['gk_policy'], g['wk_policy']): errs.append('gatekeeper policy weaker than worker policy')
    v = g['gk_policy']['vendor']
    if v and (v['minimum_tcb'] != 'UpToDate' or v['accept_unrated']): errs.append('gatekeeper vendor part not strict')
    # Only DCAP evidence (sgx, tdx) carries a TCB status; the rest is unrated, which gatekeepers refuse.
    if v and not {'sgx', 'tdx'} & set(v['platforms']): errs.append('gatekeeper vendor part admits nobody')
    return errs


# ---- §16.3 registrations -----------------------------------------------------------------------
def registration_nonce(genesis_hash, role):
    return var16(b'keyward/v1/ledger/registration') + genesis_hash + var8(role)


def encode_registration(channel, endpoint, stake, evidence):
    return channel + var8(endpoint) + u64(stake) + var16(evidence)


def decode_registration(b):
    r = Reader(b)
    reg = dict(channel=r.take(32), endpoint=r.var(1, 255), stake=r.u64(), evidence=r.var(2, 1024))
    r.end()
    return reg


def canonical_endpoint(ep):
    """§16.3: ASCII ip:port as Rust's SocketAddr prints it (IPv6 in brackets), no host names,
    no leading zeros. Returns the address, or None. Python's IPv6 text is RFC 5952 like Rust's,
    except for forms §16.3 does not pin down (IPv4-mapped `::ffff:a.b.c.d`, `%scope`): those are
    refused here; the vectors use IPv4 only."""
    try:
        s = ep.decode('ascii')
        m = re.fullmatch(r'\[([0-9a-f:.]+)\]:(\d+)|([0-9.]+):(\d+)', s)
        if not m:
            return None
        host, port = (m[1], m[2]) if m[1] else (m[3], m[4])
        ip = ipaddress.ip_address(host)
        if (ip.version == 6) != bool(m[1]) or str(ip) != host or str(int(port)) != port or int(port) > 65535:
            return None
        return ip
    except (UnicodeDecodeError, ValueError):
        return None


def gatekeeper_endpoint_allowed(ip):
    """§16.3: loopback, RFC 1918 private or IPv6 unique-local (fc00::/7)."""
    if ip.version == 4:
        return ip.is_loopback or any(ip in ipaddress.ip_network(n) for n in ('10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'))
    return ip.is_loopback or ip in ipaddress.ip_network('fc00::/7')


# ---- §16.6 epochs, §8.2 MasterKey ---------------------------------------------------------------
MAX_COMMITTEE = 64
MAX_SECRET_ENVELOPE_LEN = 1024


def master_public(secret):
    """§8.2: s_e is a nonzero scalar, 32 bytes little-endian canonical; S_e = s_e·G. None if not."""
    s = int.from_bytes(secret, 'little')
    return r255.encode(r255.mul(s, r255.B)) if len(secret) == 32 and 0 < s < r255.L else None


def secret_aad(genesis_hash, epoch, recipient):
    return var16(b'keyward/v1/ledger/epoch-secret') + genesis_hash + u64(epoch) + recipient


def encode_epoch_create(epoch, master, committee, envelopes, proposal):
    """proposal: None (u8(0), epoch 0) or the 32-byte rotation (u8(1) || proposal)."""
    return (u64(epoch) + master + u16(len(committee)) + b''.join(committee)
            + b''.join(var32(e) for e in envelopes)
            + (u8(0) if proposal is None else u8(1) + proposal))


def decode_epoch_create(b):
    """§16.6: S_e canonical and not the identity; 1 <= n <= 64 distinct members (canonical sr25519
    keys); n − 1 envelopes of at most 1024 bytes, each a §5.4 envelope; flag 0 (epoch 0) or
    1 and a proposal (every later epoch); no trailing bytes."""
    r = Reader(b)
    epoch = r.u64(); master = r.take(32)
    if master == bytes(32) or r255.decode(master) is None:
        raise Malformed('S_e not a canonical non-identity ristretto255 point')
    n = r.u16()
    if not 1 <= n <= MAX_COMMITTEE:
        raise Malformed('committee size')
    committee = [r.take(32) for _ in range(n)]
    if any(r255.decode(m) is None for m in committee):
        raise Malformed('committee member not canonical ristretto255')
    if len(set(committee)) != n:
        raise Malformed('committee member repeated')
    envelopes = [decode_envelope(r.var(4, MAX_SECRET_ENVELOPE_LEN)) for _ in range(n - 1)]
    flag = r.u8()
    if flag not in (0, 1):
        raise Malformed('proposal flag not 0 or 1')
    proposal = r.take(32) if flag == 1 else None
    if (proposal is not None) != (epoch > 0):
        raise Malformed('proposal flag does not match the epoch')
    r.end()
    return dict(epoch=epoch, master=master, committee=committee, envelopes=envelopes, proposal=proposal)


def epoch_create_errors(ec, author, genesis_hash):
    """§16.6 stateless rules: the first member is the author (wrong_author); every envelope is an
    epoch-secret from the author, with the secret aad of the epoch and its member, and a sender
    signature that verifies (bad_secret_envelope)."""
    errs = [] if ec['committee'][0] == author else ['wrong_author']
    for env, member in zip(ec['envelopes'], ec['committee'][1:]):
        if (env['purpose'] != b'epoch-secret' or env['sender'] != author
                or env['aad'] != secret_aad(genesis_hash, ec['epoch'], member) or not envelope_verify_sender(env)):
            errs.append('bad_secret_envelope')
    return errs


def refusal(f, *a):
    """Why f(*a) refuses its input (the Malformed message), or None if it accepts it."""
    try:
        f(*a); return None
    except Malformed as x:
        return str(x)


def attempt(f, *a):
    """f(*a), or None if it refuses the input (so a malformed vector is a FAIL, not a traceback)."""
    try:
        return f(*a)
    except Malformed:
        return None


# ---- the checks --------------------------------------------------------------------------------
def run(ok, path):
    L = json.load(open(path))
    print(f'checking {path}')
    G, W = L['genesis'], L['workerRegister']

    # 1. keys from seeds (§2.1)
    for i, m in enumerate(L['council']):
        ok(f'ledger council[{i}].public = sr25519(seed)', sr25519.public_from_seed(h(m['seed'])) == h(m['public']))
    platform = sr25519.public_from_seed(h(L['devPlatform']['seed']))
    ok('ledger devPlatform.public = sr25519(seed)', platform == h(L['devPlatform']['public']))
    worker = sr25519.public_from_seed(h(W['seed']))
    ok('ledger workerRegister.author = sr25519(seed)', worker == h(W['author']))

    # 2. genesis body (§16.2, policies §13.3)
    council = sorted(h(m['public']) for m in L['council'])
    gk, wk = policy_from_json(G['gatekeeperPolicy']), policy_from_json(G['workerPolicy'])
    codes = [c.encode('ascii') for c in G['contractCodes']]
    body = encode_genesis_body(G['chainId'].encode('ascii'), council, G['threshold'], G['params'], codes, gk, wk)
    ok('ledger genesis.body rebuilt from its fields (§16.2, council sorted, policies §13.3)', body == h(G['body']))
    g = attempt(decode_genesis_body, h(G['body']))
    ok('ledger genesis.body decodes strictly (no trailing bytes, policy lists ascending)', g is not None)
    P = G['params']
    ok('ledger genesis.body decodes back to the JSON fields',
       g['chain_id'] == G['chainId'].encode() and g['council'] == council and g['threshold'] == G['threshold']
       and g['bootstrap_gatekeepers'] == P['bootstrapGatekeepers'] and g['min_gatekeeper_stake'] == P['minGatekeeperStake']
       and g['min_worker_stake'] == P['minWorkerStake'] and g['slash_bps'] == P['slashBps']
       and g['max_proposal_ttl'] == P['maxProposalTtl'] and g['max_cluster_size'] == P['maxClusterSize']
       and g['key_threshold'] == P['keyThreshold'] and g['refresh_interval'] == P['refreshInterval']
       and g['codes'] == codes and g['gk_policy'] == gk and g['wk_policy'] == wk)
    ok('ledger genesis JSON policy lists are already in canonical (strictly ascending) order',
       all(p[k] == sorted(set(p[k])) for p in (gk, wk) for k in ('measurements', 'platforms')))

    # 3. genesis entry (§16.1)
    g_entry = h(G['entry']); g_author = h(G['author'])
    sig = g_entry[-64:]
    ok('ledger genesis.entry = "KWLE"||01||u64(0)||0^32||author||u64(0)||u8(0)||var32(body)||sig (§16.1)',
       encode_entry(0, bytes(32), g_author, 0, 0, body, sig) == g_entry)
    e = attempt(decode_entry, g_entry)
    ok('ledger genesis.entry decodes (Entry::from_bytes checks, §16.1)',
       e is not None and (e['height'], e['parent'], e['author'], e['seq'], e['kind'], e['body']) == (0, bytes(32), g_author, 0, 0, body))
    ok('ledger genesis.entry signature verifies (keyward/v1/ledger-entry, over every byte before it)',
       sr25519.verify(g_author, LEDGER_CTX, g_entry[:-64], sig))
    g_hash = entry_hash(g_entry)
    ok('ledger genesis.hash = SHA-256(var16("keyward/v1/ledger/entry-hash")||entry)', g_hash == h(G['hash']))

    # 4. genesis validity (§16.2 rules 2-4)
    errs = genesis_errors(g, g_author)
    ok('ledger genesis passes §16.2 rule 4 (author in council, threshold, params, stake order, ids, ordering)', not errs)
    ok('ledger genesis gatekeeper policy is at least as strict as the worker policy (§13.3)', at_least_as_strict(gk, wk))
    ok('ledger genesis: the worker policy is not at least as strict as the gatekeeper policy (relation is one-way here)',
       not at_least_as_strict(wk, gk))
    bad = dict(g, threshold=len(g['council']) + 1)
    ok('ledger genesis with threshold > n is invalid_genesis', genesis_errors(bad, g_author) != [])
    ok('ledger genesis authored outside the council is invalid_genesis', genesis_errors(g, h(W['author'])) != [])
    def with_gk_vendor(**v):
        vendor = {**dict(platforms=['tdx'], measurements=[bytes(48)], minimum_tcb='UpToDate', accept_unrated=False,
                         max_age_secs=600), **v}
        policy = dict(accept_insecure_dev=False, measurements=[], platforms=[], tpm_keys=[], vendor=vendor)
        return dict(g, gk_policy=policy, wk_policy=policy)
    ok('ledger genesis with a strict tdx gatekeeper vendor part (worker policy the same) is valid',
       genesis_errors(with_gk_vendor(), g_author) == [])
    ok('ledger genesis whose gatekeeper vendor part accepts OutOfDate or unrated evidence is invalid_genesis',
       genesis_errors(with_gk_vendor(minimum_tcb='OutOfDate'), g_author) == ['gatekeeper vendor part not strict']
       and genesis_errors(with_gk_vendor(accept_unrated=True), g_author) == ['gatekeeper vendor part not strict'])
    ok('ledger genesis whose gatekeeper vendor part names only nitro and sev-snp is invalid_genesis (admits nobody)',
       genesis_errors(with_gk_vendor(platforms=['nitro', 'sev-snp']), g_author) == ['gatekeeper vendor part admits nobody']
       and genesis_errors(with_gk_vendor(platforms=['nitro', 'tdx']), g_author) == [])

    # 5. worker registration: nonce, report data, evidence (§16.3, §13)
    nonce = registration_nonce(g_hash, b'worker')
    ok('ledger workerRegister.registrationNonce = var16(label)||genesis hash||var8("worker") (§16.3)', nonce == h(W['registrationNonce']))
    channel = h(W['channel'])
    keys = [(b'sr25519', worker), (b'x25519', channel)]
    rd = report_data(keys, nonce)
    ok('ledger workerRegister.reportData = report_data([Identity(author), Channel(channel)], nonce) (§13.1)', rd == h(W['reportData']))
    evb = h(W['evidence'])
    ev = attempt(parse_evidence, evb)
    ok('ledger workerRegister.evidence framing (§13.2): 198 bytes, kind 1 (dev)', ev is not None and len(evb) == 198 and ev['kind'] == 1)
    ok('ledger evidence platform key = devPlatform.public', ev['platform'] == platform)
    ok('ledger evidence measurement = workerRegister.measurement', ev['measurement'] == h(W['measurement']))
    ok('ledger evidence report data = workerRegister.reportData', ev['report_data'] == rd)
    ok('ledger evidence signature verifies (keyward/v1/evidence, u8(kind)||measurement||report data)',
       sr25519.verify(platform, b'keyward/v1/evidence', evidence_signed(ev), ev['signature']))
    ok('ledger evidence passes Evidence::verify under the genesis worker policy (§13.3, §16.3)',
       evidence_verify(ev, wk, keys, nonce) is None)
    ok('ledger evidence is refused with the gatekeeper role nonce (ReportDataMismatch)',
       evidence_verify(ev, gk, keys, registration_nonce(g_hash, b'gatekeeper')) == 'ReportDataMismatch')
    ok('ledger evidence is refused with another genesis hash in the nonce',
       evidence_verify(ev, wk, keys, registration_nonce(bytes(32), b'worker')) == 'ReportDataMismatch')
    ok('ledger evidence is refused with the bound keys swapped',
       evidence_verify(ev, wk, keys[::-1], nonce) == 'ReportDataMismatch')
    ok('ledger evidence is refused by a policy that does not accept dev (InsecureNotAccepted)',
       evidence_verify(ev, dict(wk, accept_insecure_dev=False), keys, nonce) == 'InsecureNotAccepted')
    ok('ledger evidence is refused by a policy trusting another platform (UntrustedPlatform)',
       evidence_verify(ev, dict(wk, platforms=[h(L['council'][0]['public'])]), keys, nonce) == 'UntrustedPlatform')
    ok('ledger evidence is refused by a policy allowing only 0x4e… (MeasurementNotAllowed)',
       evidence_verify(ev, dict(wk, measurements=[b'\x4e' * 32]), keys, nonce) == 'MeasurementNotAllowed')

    # 6. registration body and entry (§16.3, §16.1)
    endpoint = W['endpoint'].encode('ascii')
    rbody = encode_registration(channel, endpoint, W['stake'], evb)
    ok('ledger workerRegister.body = channel||var8(endpoint)||u64(stake)||var16(evidence) (§16.3)', rbody == h(W['body']))
    reg = attempt(decode_registration, h(W['body']))
    ok('ledger workerRegister.body decodes back to its fields',
       reg is not None and (reg['channel'], reg['endpoint'], reg['stake'], reg['evidence']) == (channel, endpoint, W['stake'], evb))
    ip = canonical_endpoint(endpoint)
    ok('ledger workerRegister.endpoint is a canonical ip:port (§16.3)', ip is not None)
    ok('ledger workerRegister.endpoint would be refused for a gatekeeper (public_gatekeeper_endpoint)',
       not gatekeeper_endpoint_allowed(ip))
    ok('ledger endpoint canonical form: refuses host names, leading zeros, unbracketed IPv6; accepts the spec examples',
       all(canonical_endpoint(x) is None for x in (b'localhost:9100', b'127.0.0.01:9100', b'127.0.0.1:09100', b'::1:9100', b'[::1]'))
       and all(canonical_endpoint(x) is not None for x in (b'127.0.0.1:9100', b'[::1]:9100')))
    ok('ledger workerRegister state rules: author not in council, stake >= min_worker_stake',
       worker not in g['council'] and W['stake'] >= g['min_worker_stake'])

    w_entry = h(W['entry']); wsig = w_entry[-64:]
    ok('ledger workerRegister: height 1, seq 0, kind 3 (worker_register), parent = genesis.hash',
       (W['height'], W['seq'], W['kind']) == (1, 0, 3) and h(W['parent']) == g_hash == h(G['hash']))
    ok('ledger workerRegister.entry = "KWLE"||01||u64(1)||genesis hash||author||u64(0)||u8(3)||var32(body)||sig',
       encode_entry(1, g_hash, worker, 0, 3, rbody, wsig) == w_entry)
    e = attempt(decode_entry, w_entry)
    ok('ledger workerRegister.entry decodes (Entry::from_bytes checks)',
       e is not None and (e['height'], e['parent'], e['author'], e['seq'], e['kind'], e['body']) == (1, g_hash, worker, 0, 3, rbody))
    ok('ledger workerRegister.entry signature verifies (keyward/v1/ledger-entry)',
       sr25519.verify(worker, LEDGER_CTX, w_entry[:-64], wsig))
    ok('ledger workerRegister.hash = SHA-256(var16("keyward/v1/ledger/entry-hash")||entry)', entry_hash(w_entry) == h(W['hash']))

    # 7. negative checks
    for name, entry, author in (('genesis', g_entry, g_author), ('workerRegister', w_entry, worker)):
        signed = entry[:-64]
        # one byte in the header (height), one in the parent, one in the body
        for at, what in ((12, 'height'), (13, 'parent'), (len(signed) - 1, 'body')):
            flipped = bytearray(signed); flipped[at] ^= 0x01
            ok(f'ledger {name}: flipping one byte of the {what} breaks the signature',
               not sr25519.verify(author, LEDGER_CTX, bytes(flipped), entry[-64:]))
        ok(f'ledger {name}: signature refused under context keyward/v1/envelope',
           not sr25519.verify(author, b'keyward/v1/envelope', signed, entry[-64:]))
    ok('ledger evidence signature refused under context keyward/v1/ledger-entry',
       not sr25519.verify(platform, LEDGER_CTX, evidence_signed(ev), ev['signature']))
    try:
        decode_entry(w_entry + b'\0'); trailing = False
    except Malformed:
        trailing = True
    ok('ledger entry with a trailing byte is refused (malformed_entry)', trailing)
    try:
        decode_entry(w_entry[:5 + 8 + 32 + 32 + 8] + b'\xc8' + w_entry[5 + 8 + 32 + 32 + 8 + 1:]); unknown = False
    except Malformed as x:
        unknown = str(x) == 'unknown_kind'
    ok('ledger entry with kind 200 is refused (unknown_kind)', unknown)

    # 8. epoch creation (§16.6; §16.1 entry, §5 envelope, §8.2 MasterKey, §7.3 and §11 checksum)
    X = L['epochCreate']
    gks = [h(m['public']) for m in X['gatekeepers']]
    for i, m in enumerate(X['gatekeepers']):
        ok(f'ledger epochCreate.gatekeepers[{i}].public = sr25519(seed)', sr25519.public_from_seed(h(m['seed'])) == gks[i])
    author, master = gks[0], h(X['masterPublic'])
    ok('ledger epochCreate.masterPublic = masterSecret·G (§8.2, masterSecret a canonical nonzero scalar)',
       master_public(h(X['masterSecret'])) == master)
    aad = secret_aad(g_hash, X['epoch'], gks[1])
    ok('ledger epochCreate.secretAad = var16("keyward/v1/ledger/epoch-secret")||genesis hash||u64(0)||gatekeepers[1].public',
       aad == h(X['secretAad']))
    envb = h(X['envelope'])
    env = attempt(decode_envelope, envb)
    ok('ledger epochCreate.envelope decodes (§5.6 Envelope::from_bytes framing)', env is not None)
    ok(f'ledger epochCreate.envelope length = 174 + L + A + C = {174 + 12 + len(aad) + 48} (C = 32-byte scalar + 16)',
       len(envb) == 174 + len(env['purpose']) + len(env['aad']) + len(env['ct']) and len(env['ct']) == 32 + TAG_LEN)
    ok('ledger epochCreate.envelope re-encodes to the same bytes (§5.4)',
       encode_envelope(env['purpose'], env['sender'], env['recipient'], env['enc'], env['aad'], env['ct'], env['signature']) == envb)
    ok('ledger epochCreate.envelope: purpose epoch-secret, sender gatekeepers[0].public, recipient gatekeepers[1].channel, aad secretAad',
       (env['purpose'], env['sender'], env['recipient'], env['aad']) == (b'epoch-secret', author, h(X['gatekeepers'][1]['channel']), aad))
    ok('ledger epochCreate.envelope sender signature verifies over the §5.3 transcript (keyward/v1/envelope)',
       envelope_verify_sender(env))
    ebody = encode_epoch_create(X['epoch'], master, gks, [envb], None)
    ok('ledger epochCreate.body = u64(0)||S_e||u16(2)||gatekeepers||var32(envelope)||u8(0) (§16.6)', ebody == h(X['body']))
    ec = attempt(decode_epoch_create, ebody)
    ok('ledger epochCreate.body decodes back to its fields',
       ec is not None and (ec['epoch'], ec['master'], ec['committee'], ec['envelopes'], ec['proposal'])
       == (X['epoch'], master, gks, [env], None))
    ok('ledger epochCreate passes the §16.6 stateless rules (first member is the author; the envelope is the author\'s, for its member)',
       epoch_create_errors(ec, author, g_hash) == [])
    x_entry = h(X['entry']); xsig = x_entry[-64:]
    ok('ledger epochCreate: kind 5 (epoch_create), height 4, seq 1 (the author\'s second entry)',
       (X['kind'], X['height'], X['seq']) == (5, 4, 1))
    ok('ledger epochCreate.entry = "KWLE"||01||u64(4)||parent||gatekeepers[0].public||u64(1)||u8(5)||var32(body)||sig',
       encode_entry(X['height'], h(X['parent']), author, X['seq'], X['kind'], ebody, xsig) == x_entry)
    e = attempt(decode_entry, x_entry)
    ok('ledger epochCreate.entry decodes (Entry::from_bytes checks)',
       e is not None and (e['height'], e['parent'], e['author'], e['seq'], e['kind'], e['body'])
       == (4, h(X['parent']), author, 1, 5, ebody))
    ok('ledger epochCreate.entry signature verifies (keyward/v1/ledger-entry)', sr25519.verify(author, LEDGER_CTX, x_entry[:-64], xsig))
    ok('ledger epochCreate.hash = SHA-256(var16("keyward/v1/ledger/entry-hash")||entry)', entry_hash(x_entry) == h(X['hash']))
    c_gen = checksum_genesis(g['chain_id'])
    ok(f'ledger epochCreate.checksumGenesis = c_genesis of the genesis chain id "{g["chain_id"].decode()}" (§11)',
       c_gen == h(X['checksumGenesis']))
    ok('ledger epochCreate.checksum = c_0 over the classic record: t = 1, n = 2, index i → committee[i−1], every Y_i = S_e (§11, §7.3)',
       epoch_checksum(c_gen, ec['epoch'], master, 1, classic_members(master, ec['committee'])) == h(X['checksum']))

    # 9. epoch creation negative checks
    ok('ledger epoch_create with proposal flag 1 (and a proposal) for epoch 0 is refused (malformed_entry)',
       refusal(decode_epoch_create, encode_epoch_create(0, master, gks, [envb], h(X['parent'])))
       == 'proposal flag does not match the epoch')
    ok('ledger epoch_create for epoch 1: accepted with flag 1 and a proposal, refused with flag 0',
       refusal(decode_epoch_create, encode_epoch_create(1, master, gks, [envb], h(X['parent']))) is None
       and refusal(decode_epoch_create, encode_epoch_create(1, master, gks, [envb], None)) == 'proposal flag does not match the epoch')
    ok('ledger epoch_create with proposal flag 2 is refused (malformed_entry)',
       refusal(decode_epoch_create, ebody[:-1] + u8(2)) == 'proposal flag not 0 or 1')
    ok('ledger epoch_create whose committee repeats a member is refused (malformed_entry)',
       refusal(decode_epoch_create, encode_epoch_create(0, master, [author, author], [envb], None)) == 'committee member repeated')
    ok('ledger epoch_create with S_e = identity (32 zero bytes) is refused (malformed_entry)',
       refusal(decode_epoch_create, encode_epoch_create(0, bytes(32), gks, [envb], None)) == 'S_e not a canonical non-identity ristretto255 point')
    ok('ledger epoch_create with a missing envelope (n = 2, none listed) is refused',
       refusal(decode_epoch_create, encode_epoch_create(0, master, gks, [], None)) is not None)
    ok('ledger epochCreate authored by gatekeepers[1] is wrong_author', 'wrong_author' in epoch_create_errors(ec, gks[1], g_hash))
    ok('ledger epochCreate envelope checked against another genesis hash is bad_secret_envelope',
       epoch_create_errors(ec, author, bytes(32)) == ['bad_secret_envelope'])
    ok('ledger epochCreate envelope checked for epoch 1 is bad_secret_envelope (the aad names the epoch)',
       epoch_create_errors(dict(ec, epoch=1), author, g_hash) == ['bad_secret_envelope'])
    ok('ledger epochCreate envelope signature refused under context keyward/v1/ledger-entry',
       not sr25519.verify(author, LEDGER_CTX, envelope_transcript(env['purpose'], env['recipient'], env['enc'], env['aad'], env['ct']),
                          env['signature']))
    ok('ledger epochCreate checksum changes with another chain id, threshold or verification share (§11)',
       all(epoch_checksum(*a) != h(X['checksum']) for a in (
           (checksum_genesis(b'other-net'), 0, master, 1, classic_members(master, gks)),
           (c_gen, 0, master, 2, classic_members(master, gks)),
           (c_gen, 0, master, 1, [(1, master, gks[0]), (2, r255.encode(r255.B), gks[1])]))))
