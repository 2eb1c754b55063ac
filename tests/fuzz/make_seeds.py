#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): real
vhost-user sessions, rings, register sequences, kernel headers and command
lines, encoded the way each target reads its input (see the comment at the
top of tests/fuzz/<target>.c). Run from the repository root; the output is
committed, so this only needs to run again when an input format changes."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- a split ring of 16 entries in 4 KiB of guest memory ----
QSIZE = 16
DESC, AVAIL, USED = 0x000, 0x100, 0x140
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def desc(addr, length, flags=0, nxt=0):
    return struct.pack("<QIHH", addr, length, flags, nxt)


def ring_memory(size=0x1000, inflight_at=None):
    """Guest memory with three chains on the avail ring: out+in, an
    indirect table (out+in), a lone in buffer."""
    mem = bytearray(size)
    table = [desc(0x200, 16, F_NEXT, 1), desc(0x300, 64, F_WRITE),
             desc(0x400, 32, F_INDIRECT), desc(0x700, 16, F_WRITE)]
    for i, d in enumerate(table):
        mem[DESC + 16 * i:DESC + 16 * i + 16] = d
    mem[0x400:0x420] = desc(0x500, 8, F_NEXT, 1) + desc(0x600, 8, F_WRITE)
    mem[0x200:0x210] = struct.pack("<IIQ", 0, 0, 0)  # a blk-style header
    mem[AVAIL:AVAIL + 10] = struct.pack("<HHHHH", 0, 3, 0, 2, 3)
    if inflight_at is not None:
        # queue 0: version 1, 16 entries, head 0 in flight (counter 1)
        hdr = struct.pack("<QHHHH", 0, 1, QSIZE, 0, 0)
        d0 = struct.pack("<B5xHQ", 1, 0, 1)
        mem[inflight_at:inflight_at + 16 + 16] = hdr + d0
    return bytes(mem)


class Ring:
    """The driver side of queue q's ring in fuzz_ring.h's layout."""

    STRIDE, RAVAIL, RUSED = 0x400, 0x100, 0x140

    def __init__(self, mem, q, size=QSIZE):
        self.mem, self.base, self.size = mem, q * self.STRIDE, size
        self.next_desc, self.avail_idx, self.table_at = 0, 0, None

    def put(self, addr, data):
        self.mem[addr:addr + len(data)] = data

    def chain(self, bufs, indirect_at=None):
        """bufs: (addr, len, device_writable); published at once."""
        descs = [desc(a, n, (F_WRITE if w else 0)) for a, n, w in bufs]
        linked = []
        for i, d in enumerate(descs):
            a, n, fl, _ = struct.unpack("<QIHH", d)
            last = i == len(descs) - 1
            linked.append((a, n, fl | (0 if last else F_NEXT)))
        if indirect_at is not None:
            table = b"".join(desc(a, n, fl, i + 1) for i, (a, n, fl) in enumerate(linked))
            self.put(indirect_at, table)
            linked = [(indirect_at, len(table), F_INDIRECT)]
        head = self.next_desc
        for i, (a, n, fl) in enumerate(linked):
            at = self.base + 16 * ((head + i) % self.size)
            self.put(at, desc(a, n, fl, (head + i + 1) % self.size))
        self.next_desc = (head + len(linked)) % self.size
        avail = self.base + self.RAVAIL
        self.put(avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", head))
        self.avail_idx += 1
        self.put(avail + 2, struct.pack("<H", self.avail_idx))
        return head


ALL = 0xFFFFFFFFFFFFFFFF


def ring_seed(opts, features, mem):
    return struct.pack("<BQ", opts, features) + bytes(mem).rstrip(b"\0")


# ---- virtio-blk ----
def blk_seeds():
    def req(ring, at, typ, sector, data=None, data_len=0, write=False, seg=None, indirect=None):
        ring.put(at, struct.pack("<IIQ", typ, 0, sector))
        bufs = [(at, 16, False)]
        if seg is not None:
            ring.put(at + 16, seg)
            bufs.append((at + 16, len(seg), False))
        if data_len:
            if data is not None:
                ring.put(at + 0x40, data)
            bufs.append((at + 0x40, data_len, write))
        bufs.append((at + 0x3f0, 1, True))
        return ring.chain(bufs, indirect)

    mem = bytearray(0x8000)
    r = Ring(mem, 0)
    req(r, 0x1000, 1, 4, bytes(range(256)) * 2, 512)           # OUT
    req(r, 0x1400, 0, 4, None, 512, write=True)                # IN
    req(r, 0x1800, 4, 0)                                       # FLUSH
    req(r, 0x1c00, 8, 0, None, 20, write=True)                 # GET_ID
    req(r, 0x2000, 11, 0, seg=struct.pack("<QII", 0, 8, 0))    # DISCARD
    req(r, 0x2400, 13, 8, seg=struct.pack("<QII", 8, 8, 1))    # WRITE_ZEROES, unmap
    req(r, 0x2800, 0, 2, None, 1024, write=True, indirect=0x2c00)
    write("blk", "requests", ring_seed(3, ALL, mem))
    mem = bytearray(0x8000)
    r = Ring(mem, 0)
    req(r, 0x1000, 0, 127, None, 1024, write=True)             # past the end
    req(r, 0x1400, 99, 0)                                      # unknown type
    req(r, 0x1800, 1, 0, None, 100)                            # not a sector multiple
    write("blk", "bad_requests", ring_seed(0, ALL, mem))
    write("blk", "readonly_write", ring_seed(0x80, ALL, bytes(mem)))


# ---- virtio-net ----
def net_hdr(flags=0, gso=0, hdr_len=0, gso_size=0, csum_start=0, csum_off=0, nbuf=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, csum_start, csum_off, nbuf)


ETH = bytes.fromhex("525400123456" "525400abcdef" "0800") + bytes(46)


def net_seeds():
    def seed(frames, build):
        mem = bytearray(0x6000)
        rings = [Ring(mem, q) for q in range(5)]
        build(rings)
        head = struct.pack("<QB", ALL, len(frames))
        head += b"".join(struct.pack("<H", len(f)) + f for f in frames)
        return head + bytes(mem).rstrip(b"\0")

    def traffic(r):
        rx0, tx0, rx1, tx1, ctrl = r
        tx0.put(0x1400, net_hdr() + ETH)
        tx0.chain([(0x1400, 12 + len(ETH), False)])
        tx0.put(0x1500, net_hdr(1, 0, 0, 0, 34, 16))
        tx0.put(0x1600, ETH)
        tx0.chain([(0x1500, 12, False), (0x1600, len(ETH), False)])
        tx1.put(0x1700, net_hdr(1, 1, 54, 1448, 34, 16) + ETH)
        tx1.chain([(0x1700, 12 + len(ETH), False)], indirect_at=0x1780)
        for i in range(3):
            rx0.chain([(0x2000 + i * 0x800, 0x600, True)])
        rx1.chain([(0x3800, 12, True), (0x3900, 0x500, True)])
        ctrl.put(0x1800, struct.pack("<BBH", 4, 0, 2))
        ctrl.chain([(0x1800, 2, False), (0x1802, 2, False), (0x1810, 1, True)])

    frames = [net_hdr() + ETH, net_hdr(2) + ETH, net_hdr() + ETH * 30]
    write("net", "traffic", seed(frames, traffic))

    def small_buffers(r):
        rx0 = r[0]
        for i in range(4):
            rx0.chain([(0x2000 + i * 0x40, 0x40, True)])
        r[1].put(0x1400, net_hdr(0, 4, 54, 0, 0, 0) + ETH)   # GSO without size
        r[1].chain([(0x1400, 12 + len(ETH), False)])
        r[4].put(0x1800, struct.pack("<BBH", 4, 0, 9))       # too many pairs
        r[4].chain([(0x1800, 4, False), (0x1810, 1, True)])

    write("net", "small_buffers", seed([net_hdr() + ETH * 2], small_buffers))


# ---- virtio-vsock ----
def vsock_hdr(op, src_port=5000, dst_port=1234, length=0, flags=0, buf_alloc=262144, fwd=0,
              src_cid=3, dst_cid=2):
    return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, length, 1, op,
                       flags, buf_alloc, fwd)


HOST_PORT = 1 << 30   # the first host port cvmm allocates (VSOCK_EPHEMERAL_BASE)


def vsock_seeds():
    def seed(packets, host=b"", client=b""):
        mem = bytearray(0x6000)
        rx, tx, ev = Ring(mem, 0), Ring(mem, 1), Ring(mem, 2)
        at = 0x1000
        for i, (hdr, payload, split) in enumerate(packets):
            tx.put(at, hdr + payload)
            if split and payload:
                tx.chain([(at, 44, False), (at + 44, len(payload), False)])
            else:
                tx.chain([(at, 44 + len(payload), False)])
            at += 0x100
        for i in range(4):
            rx.chain([(0x3000 + i * 0x400, 0x400, True)])
        ev.chain([(0x2f00, 8, True)])
        return struct.pack("<QH", ALL, len(host)) + host + struct.pack("<H", len(client)) + client + \
            bytes(mem).rstrip(b"\0")

    write("vsock", "stream", seed([
        (vsock_hdr(1), b"", False),                       # REQUEST to the listening port
        (vsock_hdr(5, length=5), b"hello", True),         # RW
        (vsock_hdr(7), b"", False),                       # CREDIT_REQUEST
        (vsock_hdr(6, fwd=5), b"", False),                # CREDIT_UPDATE
        (vsock_hdr(4, flags=3), b"", False),              # SHUTDOWN both ways
        (vsock_hdr(3), b"", False)], host=b"reply from the host", client=b"CONNECT 5000\nhello guest"))
    # the host client's connection (on HOST_PORT) answered by the guest,
    # then data both ways
    write("vsock", "host_connect", seed([
        (vsock_hdr(2, src_port=5000, dst_port=HOST_PORT), b"", False),   # RESPONSE
        (vsock_hdr(5, src_port=5000, dst_port=HOST_PORT, length=4), b"ping", False),
        (vsock_hdr(6, src_port=5000, dst_port=HOST_PORT, fwd=11), b"", False)],
        client=b"CONNECT 5000\nhello guest"))
    write("vsock", "host_bad_line", seed([], client=b"CONNECT 99999999999\n"))
    write("vsock", "refused", seed([
        (vsock_hdr(1, dst_port=999), b"", False),         # nobody listens
        (vsock_hdr(5, src_port=7, length=3), b"abc", False),  # no connection
        (vsock_hdr(1, dst_cid=9), b"", False),            # wrong cid
        (vsock_hdr(5, length=4000), b"x" * 8, False)]))  # length beyond the buffer


# ---- the ring core ----
def inflight_region(version=1, used_idx=0, last_batch=0, entries=()):
    """entries: (head, counter, next) of requests in flight."""
    descs = [struct.pack("<B5xHQ", 0, 0, 0)] * QSIZE
    for head, counter, nxt in entries:
        descs[head] = struct.pack("<B5xHQ", 1, nxt, counter)
    return struct.pack("<QHHHH", 0, version, QSIZE, last_batch, used_idx) + b"".join(descs)


def virtq_seeds():
    def chains():
        mem = bytearray(0x4000)
        r = Ring(mem, 0)
        r.chain([(0x1000, 16, False), (0x1100, 64, True)])
        r.chain([(0x1200, 8, False), (0x1300, 8, True)], indirect_at=0x1400)
        r.chain([(0x1500, 16, True)])
        r.chain([(0x1600, 0x100, False), (0x1700, 0x100, False), (0x1800, 0x10, True)])
        return mem, r

    def seed(opts, last_avail, region, mem):
        return struct.pack("<BH", opts, last_avail) + region + bytes(mem).rstrip(b"\0")

    none = bytes(16 + 16 * QSIZE)
    mem, _ = chains()
    write("virtq", "chains", seed(3, 0, none, mem))
    write("virtq", "chains_batched", seed(1 | 8, 0, none, mem))
    # a back-end restarted with heads 0 and 2 in flight (2 older), head 4's
    # batch published but not cleared
    write("virtq", "inflight_resume", seed(3 | 4, 0, inflight_region(
        used_idx=0, entries=[(0, 7, 0), (2, 5, 0)]), mem))
    write("virtq", "inflight_fresh", seed(3 | 4, 0, inflight_region(version=0), mem))
    loop = bytearray(mem)
    loop[0:16] = desc(0x1000, 16, F_NEXT, 0)       # a chain that loops on itself
    write("virtq", "loop", seed(2, 0, none, loop))
    nested = bytearray(mem)
    nested[0x1400:0x1410] = desc(0x1400, 32, F_INDIRECT)   # an indirect table naming one
    write("virtq", "nested_indirect", seed(2, 0, none, nested))


# ---- transports ----
CF8_R, CF8_W, ECAM_R, ECAM_W, BAR_R, BAR_W, MMIO_R, MMIO_W = range(8)


def acc(where, off, val=0, size=4):
    return struct.pack("<BBII", where, size - 1, off, val)


def cfg(dev, off, val=None, size=4):
    """A config access to 00:dev.0 through CF8/CFC."""
    ops = [acc(CF8_W, 0, 0x80000000 | dev << 11 | (off & 0xfc))]
    port = 4 + (off & 3)
    ops.append(acc(CF8_R, port, 0, size) if val is None else acc(CF8_W, port, val, size))
    return ops


def pci_driver():
    ops = cfg(1, 0) + cfg(1, 0x34, size=1) + cfg(1, 0x10, 0xFFFFFFFF) + cfg(1, 0x10) + \
        cfg(1, 0x10, 0xC0000000) + cfg(1, 4, 6, 2)
    ops += [acc(ECAM_R, (1 << 15) | off) for off in range(0x40, 0x100, 4)]  # the capabilities
    ops += [acc(BAR_W, 0x14, 0, 1), acc(BAR_W, 0x14, 1, 1), acc(BAR_W, 0x14, 3, 1)]
    for sel in (0, 1):
        ops += [acc(BAR_W, 0x00, sel), acc(BAR_R, 0x04), acc(BAR_W, 0x08, sel),
                acc(BAR_W, 0x0C, [(1 << 29) | (1 << 28), 1][sel])]
    ops += [acc(BAR_W, 0x14, 11, 1), acc(BAR_R, 0x14, 0, 1), acc(BAR_R, 0x12, 0, 2),
            acc(BAR_W, 0x10, 0, 2)]
    for q in (0, 1):
        base = q * 0x400
        ops += [acc(BAR_W, 0x16, q, 2), acc(BAR_R, 0x18, 0, 2), acc(BAR_W, 0x18, QSIZE, 2),
                acc(BAR_W, 0x1A, q + 1, 2), acc(BAR_W, 0x20, base), acc(BAR_W, 0x24, 0),
                acc(BAR_W, 0x28, base + 0x100), acc(BAR_W, 0x2C, 0),
                acc(BAR_W, 0x30, base + 0x140), acc(BAR_W, 0x34, 0), acc(BAR_R, 0x1E, 0, 2),
                acc(BAR_W, 0x1C, 1, 2)]
    ops += [acc(BAR_W, 0x4000 + 16 * i + k * 4, v) for i in range(3)
            for k, v in enumerate((0xFEE00000, 0, 0x40 + i, 0))]
    ops += [acc(BAR_W, 0x14, 15, 1), acc(BAR_W, 0x3000, 0, 2), acc(BAR_W, 0x3004, 1, 2),
            acc(BAR_R, 0x1000, 0, 1), acc(BAR_R, 0x2000, 0, 4), acc(BAR_W, 0x2000, 0x55, 1),
            acc(BAR_R, 0x15, 0, 1), acc(BAR_R, 0x5000), acc(BAR_W, 0x14, 0, 1), acc(BAR_R, 0x14, 0, 1)]
    return ops


def mmio_driver():
    ops = [acc(MMIO_R, o) for o in (0x000, 0x004, 0x008, 0x00C)]
    ops += [acc(MMIO_W, 0x070, 1), acc(MMIO_W, 0x070, 3)]
    for sel in (0, 1):
        ops += [acc(MMIO_W, 0x014, sel), acc(MMIO_R, 0x010), acc(MMIO_W, 0x024, sel),
                acc(MMIO_W, 0x020, [(1 << 29) | (1 << 28), 1][sel])]
    ops += [acc(MMIO_W, 0x070, 11), acc(MMIO_R, 0x070)]
    for q in (0, 1):
        base = q * 0x400
        ops += [acc(MMIO_W, 0x030, q), acc(MMIO_R, 0x034), acc(MMIO_W, 0x038, QSIZE),
                acc(MMIO_W, 0x080, base), acc(MMIO_W, 0x084, 0), acc(MMIO_W, 0x090, base + 0x100),
                acc(MMIO_W, 0x094, 0), acc(MMIO_W, 0x0A0, base + 0x140), acc(MMIO_W, 0x0A4, 0),
                acc(MMIO_W, 0x044, 1)]
    ops += [acc(MMIO_W, 0x070, 15), acc(MMIO_W, 0x050, 0), acc(MMIO_R, 0x060), acc(MMIO_W, 0x064, 1),
            acc(MMIO_R, 0x0FC), acc(MMIO_R, 0x100, 0, 1), acc(MMIO_W, 0x100, 7, 2),
            acc(MMIO_W, 0x070, 0), acc(MMIO_R, 0x044)]
    return ops


def transport_seeds():
    mem, _ = bytearray(0x2000), None
    for q in (0, 1):
        r = Ring(mem, q)
        r.chain([(0x1000 + q * 0x200, 16, False), (0x1100 + q * 0x200, 64, True)])
        r.chain([(0x1800 + q * 0x100, 8, False), (0x1900 + q * 0x80, 8, True)], indirect_at=0x1c00 + q * 0x40)
    mem = bytes(mem).rstrip(b"\0")
    head = struct.pack("<H", len(mem)) + mem
    write("transport", "pci_driver", head + b"".join(pci_driver()))
    write("transport", "mmio_driver", head + b"".join(mmio_driver()))
    write("transport", "pci_bar_sizing", struct.pack("<H", 0) + b"".join(
        cfg(0, 0) + cfg(1, 0x10, 0xFFFFFFFF) + cfg(1, 0x10) + cfg(1, 4, 0, 2) +
        [acc(BAR_R, 0x14, 0, 1)] + cfg(1, 0x10, 0xD0000000) + cfg(1, 4, 2, 2) + cfg(2, 0) +
        [acc(ECAM_R, (1 << 15) | 0x40, 0, 3), acc(ECAM_W, (1 << 15) | 0x4, 0xFFFF, 2)]))


# ---- kernel loader ----
def bzimage(version=0x020F, xlf=1, loadflags=1, body=1024):
    setup = bytearray(2 * 512)                     # setup_sects = 1
    setup[0x1F1] = 1
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x200:0x202] = bytes([0xEB, 0x66])       # header ends at 0x268
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)   # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)     # kernel_alignment
    setup[0x234] = 1                                   # relocatable
    struct.pack_into("<H", setup, 0x236, xlf)
    struct.pack_into("<I", setup, 0x238, 2047)         # cmdline_size
    struct.pack_into("<Q", setup, 0x258, 0x1000000)    # pref_address
    struct.pack_into("<I", setup, 0x260, 0x400000)     # init_size
    return bytes(setup) + b"\x90" * body


def elf(segs, entry=0x1000000):
    """segs: (paddr, vaddr, filesz, memsz)."""
    phoff, n = 64, len(segs)
    data_at = phoff + 56 * n
    hdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    hdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, 0, 0, 64, 56, n, 0, 0, 0)
    ph, body = b"", b""
    for paddr, vaddr, filesz, memsz in segs:
        ph += struct.pack("<IIQQQQQQ", 1, 5, data_at + len(body), vaddr, paddr, filesz, memsz, 0x1000)
        body += b"\xf4" * filesz
    return hdr + ph + body


def kernel_seeds():
    def seed(image, ram=1, initrd_kib=64, cmdline=40):
        return struct.pack("<BHH", ram, initrd_kib, cmdline) + image

    write("kernel", "bzimage", seed(bzimage()))
    write("kernel", "bzimage_32bit", seed(bzimage(version=0x020A, xlf=0)))
    write("kernel", "elf", seed(elf([(0x1000000, 0x1000000, 256, 0x2000)])))
    write("kernel", "elf_vmlinux", seed(elf([(0x1000000, 0xFFFFFFFF81000000, 128, 0x1000),
                                             (0x1200000, 0xFFFFFFFF81200000, 64, 0x100000)],
                                            entry=0xFFFFFFFF81000000), ram=2, initrd_kib=900))


# ---- command line ----
def cli_seeds():
    def seed(*args):
        return b"\0".join(a.encode() for a in args)

    write("cli", "vm", seed("--kernel", "bzImage", "--initramfs", "initrd", "--cmdline",
                            "console=ttyS0 quiet", "--cpus", "boot=2", "--memory",
                            "size=1G,shared=on,hugepages=off", "--serial", "file=/tmp/x",
                            "--transport", "mmio", "-v", "-v"))
    write("cli", "devices", seed("--kernel", "k", "--disk",
                                 "path=a.img,readonly=on,direct=off,num_queues=4,queue_size=256,serial=S1,id=d0",
                                 "--disk", "path=b.img", "--net",
                                 "tap=tap0,mac=52:54:00:12:34:56,ip=10.0.0.1,mask=255.255.255.0,"
                                 "host_mac=52:54:00:ab:cd:ef,mtu=1500,num_queues=2,queue_size=512,id=n0",
                                 "--rng", "--rng", "src=/dev/urandom", "--console", "socket=/tmp/c.sock"))
    write("cli", "block_backend", seed("--block-backend",
                                       "path=img,socket=/tmp/b.sock,client=on,readonly=on,num_queues=2"))
    write("cli", "net_backend", seed("--net-backend", "tap=t0,socket=/tmp/n.sock,num_queues=2"))
    write("cli", "vsock_backend", seed("--vsock-backend", "cid=3,socket=/tmp/v.sock,uds_path=/tmp/v"))
    write("cli", "errors", seed("--kernel", "--memory", "size=1T5", "--cpus", "boot=0,boot=1",
                                "--disk", "pathx=1", "--help", "--version", "--check-host"))


# ---- vhost-user ----
def vu(req, payload=b"", flags=1):
    return struct.pack("<III", req, flags, len(payload)) + payload


EVENTFD, MEMFD, SOCKET, PIPE = 0, 1, 2, 3


def chunk(data, fds=()):
    spec = len(fds)
    for i, k in enumerate(fds):
        spec |= k << (2 + 2 * i)
    return struct.pack("<BH", spec, len(data)) + data


UADDR = 0x7F0000000000
MEMSIZE = 0x40000
NEED_REPLY = 1 | 8
FEATURES = (1 << 32) | (1 << 30) | (1 << 29) | (1 << 28)
PROTO = (1 << 0) | (1 << 3) | (1 << 5) | (1 << 9) | (1 << 12) | (1 << 13) | (1 << 15) | (1 << 16)


def u64(v):
    return struct.pack("<Q", v)


def vring_state(i, n):
    return struct.pack("<II", i, n)


def vring_addr(i):
    return struct.pack("<IIQQQQ", i, 0, UADDR + DESC, UADDR + USED, UADDR + AVAIL, 0)


def region(gpa=0, size=MEMSIZE, uaddr=UADDR, off=0):
    return struct.pack("<QQQQ", gpa, size, uaddr, off)


def negotiate():
    return [chunk(vu(1)), chunk(vu(2, u64(FEATURES))), chunk(vu(15)),
            chunk(vu(16, u64(PROTO))), chunk(vu(3))]


def ring_setup(q, base=0):
    return [chunk(vu(8, vring_state(q, QSIZE), NEED_REPLY)),
            chunk(vu(9, vring_addr(q), NEED_REPLY)),
            chunk(vu(10, vring_state(q, base))),
            chunk(vu(12, u64(q)), [EVENTFD]),
            chunk(vu(13, u64(q)), [EVENTFD]),
            chunk(vu(14, u64(q)), [EVENTFD]),
            chunk(vu(18, vring_state(q, 1), NEED_REPLY))]


def vu_seed(mem, chunks):
    return struct.pack("<H", len(mem)) + mem + b"".join(chunks)


def vu_server_seeds():
    mem = ring_memory(0xa20, inflight_at=0x800)
    table = struct.pack("<II", 1, 0) + region()
    session = negotiate() + [chunk(vu(5, table, NEED_REPLY), [MEMFD])] + ring_setup(0) + \
        [chunk(vu(11, vring_state(0, 0))), chunk(vu(24, struct.pack("<III", 0, 24, 0) + bytes(24)))]
    write("vu_server", "session", vu_seed(mem, session))
    inflight = struct.pack("<QQHH4x", 2 * (16 + 16 * QSIZE), 0x800, 2, QSIZE)
    get_inflight = struct.pack("<QQHH4x", 0, 0, 2, QSIZE)
    write("vu_server", "inflight", vu_seed(mem, negotiate() + [
        chunk(vu(31, get_inflight)),
        chunk(vu(32, inflight, NEED_REPLY), [MEMFD]),
        chunk(vu(5, table), [MEMFD])] + ring_setup(0, base=1) + ring_setup(1) +
        [chunk(vu(11, vring_state(0, 0))), chunk(vu(11, vring_state(1, 0)))]))
    write("vu_server", "mem_slots", vu_seed(mem, negotiate() + [
        chunk(vu(36)),
        chunk(vu(37, u64(0) + region(), NEED_REPLY), [MEMFD]),
        chunk(vu(37, u64(0) + region(0x100000, 0x10000, UADDR + 0x100000), NEED_REPLY), [MEMFD]),
        chunk(vu(38, u64(0) + region(0x100000, 0x10000, UADDR + 0x100000), NEED_REPLY))] +
        ring_setup(1) + [chunk(vu(38, u64(0) + region(), NEED_REPLY))]))
    write("vu_server", "config_status", vu_seed(b"", negotiate() + [
        chunk(vu(21), [SOCKET]),
        chunk(vu(25, struct.pack("<III", 0, 8, 0) + bytes(range(8)), NEED_REPLY)),
        chunk(vu(24, struct.pack("<III", 4, 8, 0) + bytes(8))),
        chunk(vu(39, u64(15), NEED_REPLY)), chunk(vu(40)), chunk(vu(17)),
        chunk(vu(34, b"", NEED_REPLY)), chunk(vu(4)), chunk(vu(99, u64(0), NEED_REPLY)),
        chunk(vu(12, u64(0)), [PIPE])]))


# ---- vhost-user front-end (a back-end's replies and requests) ----
FE_REPLY, FE_CONNECT, FE_START, FE_STOP, FE_ENABLE, FE_WRITE, FE_RESET, FE_REQUEST, FE_ERROR = range(9)
REPLY = 1 | 4


def rep(req, payload=b"", fds=()):
    """A REPLY record: one reply message the back-end queues."""
    return bytes([FE_REPLY]) + chunk(vu(req, payload, REPLY), fds)


def ack(req, v=0):
    return rep(req, u64(v))


def fe_config(size, data=b""):
    return struct.pack("<III", 0, size, 0) + data.ljust(size, b"\0")


def fe_negotiate(queues=2, cfg_size=16, cfg=b"cvmm"):
    return [rep(1, u64(FEATURES)), rep(15, u64(PROTO)), rep(17, u64(queues)), rep(36, u64(8)),
            ack(21), rep(24, fe_config(cfg_size, cfg))]


def fe_dev_start(inflight=True):
    recs = [ack(2), ack(39), ack(37)]
    if inflight:
        recs += [rep(31, struct.pack("<QQHH4x", 4096, 0, 2, QSIZE), [MEMFD]), ack(32)]
    return recs


def fe_ring_push():
    return [ack(8), ack(9), ack(10), ack(13), ack(14), ack(12), ack(18), ack(39)]


def fe_op(op, *args):
    return bytes([op]) + b"".join(args)


def fe_request(msg, fds=()):
    return bytes([FE_REQUEST]) + chunk(msg, fds)


def fe_seed(setup, mask, cfg_size, records):
    return bytes([setup, mask, cfg_size]) + b"".join(records)


def vu_frontend_seeds():
    start = lambda q, f=(1 << 32): fe_op(FE_START, bytes([q]), u64(f))
    # Two queues, every protocol feature: negotiation, both rings started,
    # a config change (acked, then GET_CONFIG), a config write, a ring
    # error, a stop and a reset.
    write("vu_frontend", "session", fe_seed(1, 0xFF, 16, fe_negotiate() + fe_dev_start() +
          fe_ring_push() + fe_ring_push() + [rep(24, fe_config(16, b"changed")), ack(25),
          rep(24, fe_config(16, b"written")), ack(18), rep(11, vring_state(0, 5)), ack(39), ack(34)] +
          [fe_op(FE_CONNECT), start(0), start(1), fe_request(vu(2, b"", 1 | 8)),
           fe_op(FE_WRITE, bytes([4, 4]), b"abcd"), fe_op(FE_ERROR, b"\1"), fe_op(FE_STOP, b"\0"),
           fe_op(FE_RESET)]))
    # A back-end without VHOST_USER_F_PROTOCOL_FEATURES: no acks, the memory
    # table in one message, GET_FEATURES as the barrier.
    write("vu_frontend", "no_protocol", fe_seed(0, 0xFF, 0, [
        rep(1, u64(1 << 32)), rep(1, u64(1 << 32)), rep(11, vring_state(0, 3)),
        fe_op(FE_CONNECT), start(0), fe_op(FE_ENABLE, b"\0"), fe_op(FE_STOP, b"\0")]))
    # The first back-end's stream ends in the middle of the start; the
    # second one takes the running device over (restore).
    write("vu_frontend", "reconnect", fe_seed(0, 0xFF, 8, fe_negotiate(1, 8) + fe_dev_start() + [ack(8)] +
          [fe_op(FE_CONNECT), start(0)] + fe_negotiate(1, 8, b"other") + fe_dev_start(False)[:3] +
          [ack(32)] + fe_ring_push() + [ack(18), rep(11, vring_state(0, 0))] +
          [fe_op(FE_CONNECT), fe_op(FE_STOP, b"\0")]))
    # Back-end requests: unknown ones with fds and NEED_REPLY, a
    # CONFIG_CHANGE_MSG with a payload or an fd (malformed), a good one
    # sent in two pieces, and one cut short by the end of the channel.
    write("vu_frontend", "backend_requests", fe_seed(0, 0xFF, 16, fe_negotiate(1) +
          [rep(24, fe_config(16, b"new")), fe_op(FE_CONNECT),
           fe_request(vu(7, u64(0), 1 | 8), [MEMFD, SOCKET]), fe_request(vu(2, u64(1), 1 | 8)),
           fe_request(vu(2), [EVENTFD]), fe_request(vu(4, u64(0)), [EVENTFD]),
           fe_request(vu(2)[:5]), fe_request(vu(2)[5:]), fe_request(vu(2)[:7])]))
    # Replies a broken back-end gives: a refused ack, GET_CONFIG refused
    # (the spec's error form), a bad inflight region, a reply to another
    # request.
    write("vu_frontend", "malformed", fe_seed(0, 0xFF, 16, fe_negotiate(1) +
          [ack(2, 22), fe_op(FE_CONNECT), start(0)] +
          fe_negotiate(1)[:5] + [rep(24, fe_config(0)[:12]), fe_op(FE_CONNECT)] +
          fe_negotiate(1) + [ack(2), ack(39), ack(37), rep(31, struct.pack("<QQHH4x", 1 << 40, 8, 1, QSIZE),
          [MEMFD]), fe_op(FE_CONNECT)] +
          fe_negotiate(1) + [rep(40, u64(0)), fe_op(FE_CONNECT), fe_op(FE_WRITE, bytes([0, 2]), b"xy")]))

TARGETS = {"vu_server": vu_server_seeds, "blk": blk_seeds, "net": net_seeds, "vsock": vsock_seeds, "virtq": virtq_seeds, "transport": transport_seeds, "kernel": kernel_seeds, "cli": cli_seeds, "vu_frontend": vu_frontend_seeds}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()
