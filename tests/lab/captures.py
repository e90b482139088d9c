#!/usr/bin/env python3
"""Turn a strongSwan capture run into committed test data, and check it.

  captures.py extract RUNDIR DESTDIR [--command CMD] [--version VER]
      RUNDIR is the output folder of scenarios/capture-strongswan.sh (one
      sub-folder per suite with ike.pcap, charon-gw-a/charon.log,
      charon-gw-b/charon.log, scenario.txt). Writes DESTDIR/<suite>/.
  captures.py check DESTDIR
      Re-checks the committed data on its own (no run needed): datagram
      sequence, SPIs and nonces against the headers, the received-packet dumps
      in both charon logs against the .bin files, both charons' keys against
      each other, SKEYSEED / SK_* / child keys / AUTH recomputed from the
      logged secrets (hashlib), and, if the `cryptography` module is there,
      decryption of every SK payload with the logged keys.

Only the standard library is required.
"""
import hashlib
import hmac
import os
import re
import shutil
import struct
import sys

EXCHANGES = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 36: "CREATE_CHILD_SA", 37: "INFORMATIONAL"}
I2R, R2I = "initiator->responder", "responder->initiator"

# charon's name for a hex dump (ike/chd level 4)  ->  keys.txt name.
# Items that appear twice (once per direction) are listed in order of
# appearance, which is the same on both sides (auth_i is built or verified
# before auth_r).
LOG_ITEMS_ONCE = {
    "shared Diffie Hellman secret": "shared_secret",
    "SKEYSEED": "skeyseed",
    "Sk_d secret": "sk_d",
    "Sk_ai secret": "sk_ai",
    "Sk_ar secret": "sk_ar",
    "Sk_ei secret": "sk_ei",
    "Sk_er secret": "sk_er",
    "Sk_pi secret": "sk_pi",
    "Sk_pr secret": "sk_pr",
    "secret": "psk",
    "seed": "child_seed",
    "encryption initiator key": "child_sk_ei",
    "encryption responder key": "child_sk_er",
    "integrity initiator key": "child_sk_ai",
    "integrity responder key": "child_sk_ar",
}
LOG_ITEMS_TWICE = {
    "IDx'": ("id_i_payload", "id_r_payload"),
    "AUTH = prf(prf(secret, keypad), octets)": ("auth_i", "auth_r"),
}
KEY_ORDER = [
    "psk", "id_i", "id_r", "id_i_payload", "id_r_payload", "spi_i", "spi_r",
    "ni", "nr", "ke_i", "ke_r", "shared_secret", "skeyseed", "sk_d", "sk_ai",
    "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr", "auth_i", "auth_r",
    "child_spi_i", "child_spi_r", "child_sk_ei", "child_sk_ai", "child_sk_er",
    "child_sk_ar",
]


def die(msg):
    print("captures.py: FAILURE: " + msg, file=sys.stderr)
    sys.exit(1)


# --- pcap ---------------------------------------------------------------------

def read_pcap(path):
    """Yield (time, src, sport, dst, dport, udp_payload) for UDP over IPv4/6."""
    data = open(path, "rb").read()
    if len(data) < 24:
        die(f"{path}: not a pcap file")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        die(f"{path}: unknown pcap magic {magic.hex()}")
    nsec = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        t = sec + frac / (1e9 if nsec else 1e6)
        if linktype == 1:  # Ethernet
            etype, l3 = struct.unpack(">H", pkt[12:14])[0], 14
            while etype == 0x8100:
                etype, l3 = struct.unpack(">H", pkt[l3 + 2:l3 + 4])[0], l3 + 4
        elif linktype == 113:  # Linux cooked
            etype, l3 = struct.unpack(">H", pkt[14:16])[0], 16
        elif linktype == 101:  # raw IP
            etype, l3 = (0x0800 if pkt[0] >> 4 == 4 else 0x86DD), 0
        else:
            die(f"{path}: unsupported link type {linktype}")
        ip = pkt[l3:]
        if etype == 0x0800:
            ihl = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            if ip[9] != 17:
                continue
            if struct.unpack(">H", ip[6:8])[0] & 0x3FFF:
                die(f"{path}: fragmented IPv4 datagram, not handled")
            src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
            udp = ip[ihl:total]
        elif etype == 0x86DD:
            if ip[6] != 17:
                continue
            import ipaddress
            src = str(ipaddress.IPv6Address(ip[8:24]))
            dst = str(ipaddress.IPv6Address(ip[24:40]))
            udp = ip[40:40 + struct.unpack(">H", ip[4:6])[0]]
        else:
            continue
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        yield t, src, sport, dst, dport, udp[8:ulen]


# --- IKE ------------------------------------------------------------------------

def ike_header(msg):
    """Parse the IKE header of msg (no non-ESP marker)."""
    spi_i, spi_r, np, ver, xchg, flags, mid, length = struct.unpack(">8s8sBBBBII", msg[:28])
    return dict(spi_i=spi_i, spi_r=spi_r, np=np, version=ver, exchange=xchg,
                flags=flags, msgid=mid, length=length)


def payloads(np, body):
    """Yield (type, critical_byte, data) for a chain of generic payloads."""
    off = 0
    while np != 0:
        if off + 4 > len(body):
            raise ValueError("truncated payload chain")
        nxt, crit, plen = struct.unpack(">BBH", body[off:off + 4])
        if plen < 4 or off + plen > len(body):
            raise ValueError(f"bad payload length {plen} at {off}")
        yield np, crit, body[off + 4:off + plen], off
        if np == 46:  # SK: its data is the rest; inner chain starts at nxt
            return
        np, off = nxt, off + plen


def ike_message(udp_payload, port):
    """Return (marker_len, ike_message) or None for non-IKE (ESP, keepalive)."""
    if port == 4500:
        if len(udp_payload) >= 4 and udp_payload[:4] == b"\0\0\0\0":
            return 4, udp_payload[4:]
        return None
    return 0, udp_payload


# --- charon log -------------------------------------------------------------------

HDR = re.compile(r"^\S+ (\d+)\[(\w+)\] (?:<[^>]*> )?(.*?) => (\d+) bytes @ \S+$")
ROW = re.compile(r"^\S+ (\d+)\[(\w+)\] (?:<[^>]*> )?\s*(\d+): (.*)$")


def log_dumps(lines):
    """Yield (thread, group, name, bytes, first_line_index) for every %B dump."""
    open_dumps = {}
    out = []
    for i, line in enumerate(lines):
        m = ROW.match(line)
        if m and (m.group(1), m.group(2)) in open_dumps:
            d = open_dumps[(m.group(1), m.group(2))]
            hexpart = m.group(4)[:48]
            d["data"] += bytes.fromhex(hexpart.replace(" ", ""))
            if len(d["data"]) >= d["len"]:
                del open_dumps[(m.group(1), m.group(2))]
            continue
        m = HDR.match(line)
        if m:
            d = dict(thread=m.group(1), group=m.group(2), name=m.group(3),
                     len=int(m.group(4)), data=b"", line=i)
            out.append(d)
            if d["len"]:
                open_dumps[(d["thread"], d["group"])] = d
    for d in out:
        if len(d["data"]) != d["len"]:
            die(f"log dump '{d['name']}' at line {d['line'] + 1}: {len(d['data'])} of {d['len']} bytes")
    return out


def keys_from_log(lines):
    keys, twice = {}, {}
    for d in log_dumps(lines):
        name = d["name"]
        if name in LOG_ITEMS_ONCE and d["group"] in ("IKE", "CHD"):
            k = LOG_ITEMS_ONCE[name]
            if k in keys and keys[k] != d["data"]:
                die(f"log has two different values for {name}")
            keys[k] = d["data"]
        elif name in LOG_ITEMS_TWICE and d["group"] == "IKE":
            twice.setdefault(name, []).append(d["data"])
    for name, vals in twice.items():
        if len(vals) != 2:
            die(f"expected '{name}' twice in the log, found {len(vals)}")
        for k, v in zip(LOG_ITEMS_TWICE[name], vals):
            keys[k] = v
    for line in lines:
        m = re.search(r"adding (inbound|outbound) ESP SA", line)
        if m:
            keys.setdefault("_next_spi_dir", []).append(m.group(1))
        m = re.search(r"\[CHD\] (?:<[^>]*> )?\s+SPI 0x([0-9a-f]{8}),", line)
        if m and keys.get("_next_spi_dir"):
            keys.setdefault("_child_spis", {})[keys["_next_spi_dir"].pop(0)] = bytes.fromhex(m.group(1))
    keys.pop("_next_spi_dir", None)
    return keys


def received_dumps(lines):
    """The datagrams charon logged at net level 3 ('received packet => N bytes')."""
    return [d["data"] for d in log_dumps(lines) if d["group"] == "NET" and d["name"] == "received packet"]


# --- crypto checks ---------------------------------------------------------------

def prf_hash(ike_proposal):
    m = re.search(r"prfsha(\d+)", ike_proposal) or re.search(r"sha(\d+)", ike_proposal)
    return {"1": hashlib.sha1, "256": hashlib.sha256, "384": hashlib.sha384,
            "512": hashlib.sha512}[m.group(1)]


def prf(h, key, data):
    return hmac.new(key, data, h).digest()


def prf_plus(h, key, seed, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = prf(h, key, t + seed + bytes([i]))
        out, i = out + t, i + 1
    return out[:n]


def decrypt_sk(keys, ike_proposal, msg, from_initiator):
    """Decrypt the SK payload of msg; return (inner first payload, plaintext)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    hdr = ike_header(msg)
    if hdr["np"] != 46:
        raise ValueError("first payload is not SK")
    inner_np, _crit, plen = struct.unpack(">BBH", msg[28:32])
    sk = msg[32:28 + plen]
    ek = keys["sk_ei" if from_initiator else "sk_er"]
    if "gcm16" in ike_proposal or "chacha20poly1305" in ike_proposal:
        iv, ct = sk[:8], sk[8:]
        key, salt = ek[:-4], ek[-4:]
        aead = ChaCha20Poly1305(key) if "chacha" in ike_proposal else AESGCM(key)
        plain = aead.decrypt(salt + iv, ct, msg[:32])
    else:
        ak = keys["sk_ai" if from_initiator else "sk_ar"]
        h = prf_hash(ike_proposal)  # integrity alg follows the PRF in these suites
        icv_len = h().digest_size // 2
        if not hmac.compare_digest(hmac.new(ak, msg[:-icv_len], h).digest()[:icv_len], msg[-icv_len:]):
            raise ValueError("integrity check failed")
        iv, ct = sk[:16], sk[16:-icv_len]
        d = Cipher(algorithms.AES(ek), modes.CBC(iv)).decryptor()
        plain = d.update(ct) + d.finalize()
    pad = plain[-1]
    return inner_np, plain[:-1 - pad]


# --- extract ---------------------------------------------------------------------

def read_kv(path):
    out = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def excerpt(lines, start_pat):
    """From the first line matching start_pat to charon's shutdown."""
    start = next((i for i, l in enumerate(lines) if re.search(start_pat, l)), 0)
    end = next((i for i, l in enumerate(lines) if "SIGTERM received" in l), len(lines))
    return lines[start:end]


def extract_suite(run, dest, version, command):
    scen = read_kv(os.path.join(run, "scenario.txt"))
    if scen.get("ping") != "ok":
        die(f"{run}: no successful ping recorded, not a working exchange")
    log_a = open(os.path.join(run, "charon-gw-a", "charon.log"), errors="replace").read().splitlines()
    log_b = open(os.path.join(run, "charon-gw-b", "charon.log"), errors="replace").read().splitlines()

    grams = []
    init_addr = None
    for t, src, sport, dst, dport, payload in read_pcap(os.path.join(run, "ike.pcap")):
        if 500 not in (sport, dport) and 4500 not in (sport, dport):
            continue
        r = ike_message(payload, dport if dport in (500, 4500) else sport)
        if r is None:
            continue
        marker, msg = r
        hdr = ike_header(msg)
        if init_addr is None:
            if hdr["exchange"] != 34 or hdr["flags"] & 0x20:
                die(f"{run}: capture does not start with an IKE_SA_INIT request")
            init_addr = src
        grams.append(dict(t=t, src=src, sport=sport, dst=dst, dport=dport,
                          payload=payload, marker=marker, msg=msg, hdr=hdr))
    if not grams:
        die(f"{run}: no IKE datagram in ike.pcap")

    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    rows = []
    for n, g in enumerate(grams, 1):
        h = g["hdr"]
        kind = "response" if h["flags"] & 0x20 else "request"
        xname = EXCHANGES.get(h["exchange"], f"exchange{h['exchange']}")
        fname = f"{n:02d}-{xname.lower()}-{kind}.bin"
        with open(os.path.join(dest, fname), "wb") as f:
            f.write(g["payload"])
        direction = I2R if g["src"] == init_addr else R2I
        rows.append(f"{fname}  {direction}  {g['src']}  {g['sport']}  {g['dst']}  {g['dport']}  "
                    f"{g['marker']}  {len(g['payload'])}  {xname}  {h['msgid']}  0x{h['flags']:02x}  "
                    f"{g['t'] - grams[0]['t']:.6f}")
    with open(os.path.join(dest, "datagrams.txt"), "w") as f:
        f.write("# One line per IKE datagram, in capture order (tcpdump on the initiator's side).\n"
                "# file  direction  src_addr  src_port  dst_addr  dst_port  non_esp_marker_octets  "
                "udp_payload_len  exchange  message_id  flags  time_s\n")
        f.write("\n".join(rows) + "\n")

    # Keys: from the initiator's log (the responder's is checked against it).
    ka, kb = keys_from_log(log_a), keys_from_log(log_b)
    keys = {}
    first, second = grams[0]["msg"], grams[1]["msg"]
    keys["spi_i"] = ike_header(second)["spi_i"]
    keys["spi_r"] = ike_header(second)["spi_r"]
    for msg, sfx in ((first, "i"), (second, "r")):
        for ptype, _c, data, _o in payloads(ike_header(msg)["np"], msg[28:]):
            if ptype == 40:
                keys["n" + sfx] = data
            elif ptype == 34:
                keys["ke_" + sfx] = data[4:]
    keys["psk"] = scen["psk"].encode()
    keys["id_i"] = scen["id_i"].encode()
    keys["id_r"] = scen["id_r"].encode()
    for k, v in ka.items():
        if k == "_child_spis":
            keys["child_spi_i"] = v["inbound"]
            keys["child_spi_r"] = v["outbound"]
        elif k == "psk":
            if v != keys["psk"]:
                die(f"{run}: PSK in charon's log differs from the configured one")
        elif k != "child_seed":
            keys[k] = v
    if ka.get("child_seed") != keys["ni"] + keys["nr"]:
        die(f"{run}: child seed in the log is not Ni | Nr")
    for k, v in kb.items():
        if k == "_child_spis":
            v = dict(inbound=v["outbound"], outbound=v["inbound"])
            if v != ka["_child_spis"]:
                die(f"{run}: child SPIs differ between the two charons")
        elif ka.get(k) != v:
            die(f"{run}: '{k}' differs between the initiator's and the responder's log")
    missing = [k for k in KEY_ORDER if k not in keys and k not in ("sk_ai", "sk_ar", "child_sk_ai", "child_sk_ar")]
    if missing:
        die(f"{run}: not found in the logs: {', '.join(missing)}")
    with open(os.path.join(dest, "keys.txt"), "w") as f:
        for k in KEY_ORDER:
            if k in keys:
                f.write(f"{k} = {keys[k].hex()}\n")

    with open(os.path.join(dest, "meta.txt"), "w") as f:
        f.write(f"strongswan_version = {version}\n"
                f"ike_proposal = {scen['ike_proposal']}\n"
                f"esp_proposal = {scen['esp_proposal']}\n"
                f"initiator_addr = {init_addr}\n"
                f"responder_addr = {grams[0]['dst']}\n"
                f"psk_text = {scen['psk']}\n"
                f"id_i_text = {scen['id_i']} (ID_FQDN)\n"
                f"id_r_text = {scen['id_r']} (ID_FQDN)\n"
                f"ping_through_tunnel = {scen['ping']}\n"
                f"command = {command}\n")
    with open(os.path.join(dest, "charon-initiator.log"), "w") as f:
        f.write("\n".join(excerpt(log_a, r"initiating IKE_SA")) + "\n")
    with open(os.path.join(dest, "charon-responder.log"), "w") as f:
        f.write("\n".join(excerpt(log_b, r"received packet")) + "\n")
    shutil.copyfile(os.path.join(run, "ike.pcap"), os.path.join(dest, "ike.pcap"))
    print(f"extracted {len(grams)} datagrams and {len(keys)} keys to {dest}")


# --- check -----------------------------------------------------------------------

class Checker:
    def __init__(self, name):
        self.name, self.fails, self.notes = name, 0, []

    def ok(self, cond, what):
        if not cond:
            self.fails += 1
            print(f"  FAIL {self.name}: {what}")
        return cond


def check_suite(d):
    c = Checker(os.path.basename(d))
    meta = read_kv(os.path.join(d, "meta.txt"))
    keys = {k: bytes.fromhex(v) for k, v in read_kv(os.path.join(d, "keys.txt")).items()}
    prop = meta["ike_proposal"]
    rows = [l.split() for l in open(os.path.join(d, "datagrams.txt")) if l.strip() and not l.startswith("#")]
    msgs = []
    for r in rows:
        fname, direction, _sa, sport, _da, dport, marker, ulen, xname, mid, flags = r[:11]
        raw = open(os.path.join(d, fname), "rb").read()
        c.ok(len(raw) == int(ulen), f"{fname}: length {len(raw)} != {ulen}")
        c.ok(int(marker) == (4 if int(dport) == 4500 else 0), f"{fname}: marker vs port")
        if int(marker):
            c.ok(raw[:4] == b"\0\0\0\0", f"{fname}: non-ESP marker")
        msg = raw[int(marker):]
        h = ike_header(msg)
        c.ok(h["length"] == len(msg), f"{fname}: IKE length {h['length']} != {len(msg)}")
        c.ok(h["version"] == 0x20, f"{fname}: version 0x{h['version']:02x}")
        c.ok(EXCHANGES.get(h["exchange"]) == xname, f"{fname}: exchange")
        c.ok(h["msgid"] == int(mid), f"{fname}: message id")
        kind = "response" if h["flags"] & 0x20 else "request"
        c.ok(fname.endswith(f"-{kind}.bin") and xname.lower() in fname, f"{fname}: name vs header")
        c.ok(bool(h["flags"] & 0x08) == (direction == I2R), f"{fname}: I flag vs direction")
        c.ok(h["spi_i"] == keys["spi_i"], f"{fname}: SPIi {h['spi_i'].hex()} != keys.txt")
        want_r = b"\0" * 8 if (xname == "IKE_SA_INIT" and kind == "request") else keys["spi_r"]
        c.ok(h["spi_r"] == want_r, f"{fname}: SPIr {h['spi_r'].hex()}")
        msgs.append((fname, direction, xname, kind, h, msg))

    seq = [(m[2], m[3], m[4]["msgid"]) for m in msgs]
    c.ok(seq == [("IKE_SA_INIT", "request", 0), ("IKE_SA_INIT", "response", 0),
                 ("IKE_AUTH", "request", 1), ("IKE_AUTH", "response", 1),
                 ("INFORMATIONAL", "request", 2), ("INFORMATIONAL", "response", 2)],
         f"exchange sequence {seq}")
    c.ok(all(int(r[3]) == 500 for r in rows[:2]) and all(int(r[3]) == 4500 for r in rows[2:]),
         "ports: IKE_SA_INIT on 500, the rest on 4500")

    # Nonces and KE from the IKE_SA_INIT messages.
    for (fname, _d, _x, _k, h, msg), sfx in zip(msgs[:2], "ir"):
        found = {p: data for p, _c, data, _o in payloads(h["np"], msg[28:])}
        c.ok(found.get(40) == keys["n" + sfx], f"{fname}: nonce vs keys.txt n{sfx}")
        c.ok(found.get(34, b"")[4:] == keys["ke_" + sfx], f"{fname}: KE vs keys.txt ke_{sfx}")

    # Both charons' received-packet dumps are the .bin files of the other side.
    for logname, direction in (("charon-initiator.log", R2I), ("charon-responder.log", I2R)):
        lines = open(os.path.join(d, logname), errors="replace").read().splitlines()
        got = received_dumps(lines)
        want = [open(os.path.join(d, r[0]), "rb").read() for r in rows if r[1] == direction]
        c.ok(got == want, f"{logname}: received datagrams ({len(got)}) != .bin files ({len(want)})")
        ks = keys_from_log(lines)
        for k, v in ks.items():
            if k == "_child_spis" or k == "child_seed":
                continue
            c.ok(keys.get(k) == v, f"{logname}: {k} differs from keys.txt")
        c.ok(ks.get("child_seed") == keys["ni"] + keys["nr"], f"{logname}: child seed != Ni|Nr")

    # Key schedule (RFC 7296 2.14, 2.17) and AUTH (2.15), recomputed.
    h = prf_hash(prop)
    c.ok(prf(h, keys["ni"] + keys["nr"], keys["shared_secret"]) == keys["skeyseed"], "SKEYSEED")
    sk = [keys.get(k, b"") for k in ("sk_d", "sk_ai", "sk_ar", "sk_ei", "sk_er", "sk_pi", "sk_pr")]
    seed = keys["ni"] + keys["nr"] + keys["spi_i"] + keys["spi_r"]
    c.ok(prf_plus(h, keys["skeyseed"], seed, sum(map(len, sk))) == b"".join(sk), "SK_* = prf+(SKEYSEED, Ni|Nr|SPIi|SPIr)")
    ck = [keys.get(k, b"") for k in ("child_sk_ei", "child_sk_ai", "child_sk_er", "child_sk_ar")]
    c.ok(prf_plus(h, keys["sk_d"], keys["ni"] + keys["nr"], sum(map(len, ck))) == b"".join(ck), "child KEYMAT = prf+(SK_d, Ni|Nr)")
    c.ok(keys["id_i_payload"][4:] == keys["id_i"] and keys["id_r_payload"][4:] == keys["id_r"], "ID payload bodies")
    kp = prf(h, keys["psk"], b"Key Pad for IKEv2")
    auth_i = prf(h, kp, msgs[0][5] + keys["nr"] + prf(h, keys["sk_pi"], keys["id_i_payload"]))
    auth_r = prf(h, kp, msgs[1][5] + keys["ni"] + prf(h, keys["sk_pr"], keys["id_r_payload"]))
    c.ok(auth_i == keys["auth_i"], "AUTH_i recomputed from message 1, Nr, SK_pi, IDi'")
    c.ok(auth_r == keys["auth_r"], "AUTH_r recomputed from message 2, Ni, SK_pr, IDr'")

    decrypted = 0
    try:
        import cryptography  # noqa: F401
        have_crypto = True
    except ImportError:
        have_crypto = False
        c.notes.append("no python3 cryptography module: SK payloads not decrypted")
    if have_crypto:
        for fname, direction, xname, kind, hd, msg in msgs[2:]:
            try:
                inner_np, plain = decrypt_sk(keys, prop, msg, direction == I2R)
            except Exception as e:  # noqa: BLE001
                c.ok(False, f"{fname}: decrypt: {e!r}")
                continue
            inner = {}
            for p, _c, data, _o in payloads(inner_np, plain):
                inner.setdefault(p, data)
            decrypted += 1
            if xname == "IKE_AUTH" and kind == "request":
                c.ok(inner.get(35) == keys["id_i_payload"], f"{fname}: decrypted IDi")
                c.ok(inner.get(39, b"")[4:] == keys["auth_i"], f"{fname}: decrypted AUTH == auth_i")
                c.ok(keys["child_spi_i"] in inner.get(33, b""), f"{fname}: child SPI i in SA")
            elif xname == "IKE_AUTH":
                c.ok(inner.get(36) == keys["id_r_payload"], f"{fname}: decrypted IDr")
                c.ok(inner.get(39, b"")[4:] == keys["auth_r"], f"{fname}: decrypted AUTH == auth_r")
                c.ok(keys["child_spi_r"] in inner.get(33, b""), f"{fname}: child SPI r in SA")
            elif kind == "request":
                c.ok(42 in inner, f"{fname}: DELETE payload")
    status = "ok" if c.fails == 0 else f"{c.fails} FAILED"
    extra = f", {decrypted} SK payloads decrypted" if have_crypto else ""
    print(f"{c.name}: {len(msgs)} datagrams, {len(keys)} keys{extra}: {status}"
          + "".join(f"\n  note: {n}" for n in c.notes))
    return c.fails


def main(argv):
    if len(argv) >= 3 and argv[0] == "extract":
        run, dest = argv[1], argv[2]
        opts = dict(zip(argv[3::2], argv[4::2]))
        suites = sorted(s for s in os.listdir(run) if os.path.isfile(os.path.join(run, s, "scenario.txt")))
        if not suites:
            die(f"{run}: no suite folders")
        for s in suites:
            extract_suite(os.path.join(run, s), os.path.join(dest, s),
                          opts.get("--version", "unknown"), opts.get("--command", ""))
        return 0
    if len(argv) == 2 and argv[0] == "check":
        dest = argv[1]
        suites = sorted(s for s in os.listdir(dest) if os.path.isfile(os.path.join(dest, s, "keys.txt")))
        if not suites:
            die(f"{dest}: no suite folders")
        fails = sum(check_suite(os.path.join(dest, s)) for s in suites)
        return 1 if fails else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
