/*
 * OATH HOTP (RFC 4226) as a card applet: WebAssembly applet interface version 1
 * (apdu-specs/docs/applets.md), C for wasm32 without libc.
 *
 * Build (see ../README.md; card_emulator::applet_sources::build_c runs the same):
 *
 *   clang --target=wasm32 -O2 -nostdlib -fno-builtin \
 *     -Wl,--no-entry -Wl,--export=process -Wl,--export-if-defined=install \
 *     -Wl,--export-if-defined=select -Wl,--export-if-defined=deselect \
 *     -Wl,-z,stack-size=8192 -Wl,--strip-all -o hotp.wasm hotp.c
 *
 * Install parameters (the value of tag C9): digits (1 byte, 6..=8) || secret (1..=64 bytes).
 * Storage (persistent; linear memory is volatile and lost at each deselection):
 *
 *   offset  0  8 bytes  moving factor (counter), big-endian
 *   offset  8  1 byte   digits
 *   offset  9  1 byte   secret length (1..=64)
 *   offset 10 64 bytes  secret (zero-padded)
 *
 * so the instance needs a storage of at least 74 bytes (INSTALL answers 6A84 otherwise;
 * the default 1 024 is plenty). The counter wraps from 2^64 - 1 to 0.
 *
 * Commands (any CLA the card routes to the applet; P1P2 00 00):
 *
 *   80 01 00 00 [Le]          GENERATE: the OTP as ASCII digits, then the counter is
 *                             incremented (the new counter is written before answering)
 *   80 02 00 00 [Le]          GET COUNTER: 8-byte big-endian counter
 *   80 03 00 00 08 <counter>  SET COUNTER (resynchronisation)
 *
 * All three need the container's PIN 0x81 verified on the channel (6982 otherwise).
 * Other INS 6D00, P1P2 other than 0000 6A86, wrong Lc 6700 (checked in that order,
 * before the PIN); 6985 if the storage does not hold a valid record.
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

#define SE_IMPORT(name) __attribute__((import_module("se"), import_name(name)))

SE_IMPORT("command") int se_command(u8 *ptr, int cap);
SE_IMPORT("respond") int se_respond(const u8 *ptr, int len);
SE_IMPORT("params") int se_params(u8 *ptr, int cap);
SE_IMPORT("storage_size") int se_storage_size(void);
SE_IMPORT("storage_read") int se_storage_read(int offset, u8 *ptr, int len);
SE_IMPORT("storage_write") int se_storage_write(int offset, const u8 *ptr, int len);
SE_IMPORT("pin_verified") int se_pin_verified(int reference);

enum {
    SW_OK = 0x9000,
    SW_WRONG_LENGTH = 0x6700,
    SW_SECURITY = 0x6982,
    SW_CONDITIONS = 0x6985,
    SW_WRONG_DATA = 0x6A80,
    SW_NO_SPACE = 0x6A84,
    SW_WRONG_P1P2 = 0x6A86,
    SW_INS = 0x6D00,
};

#define PIN_REFERENCE 0x81
#define MAX_SECRET 64

#define OFF_COUNTER 0
#define OFF_DIGITS 8
#define OFF_SECRET_LEN 9
#define OFF_SECRET 10
#define STORAGE_NEEDED (OFF_SECRET + MAX_SECRET)

/* ---- byte helpers (no libc) ----
 * Built with -fno-builtin, so clang neither turns these loops into calls of themselves nor
 * calls memcpy/memset for the loops below; it may still call them for a struct copy or a
 * large initialiser, which then links to these. */

void *memcpy(void *dst, const void *src, unsigned long n) {
    u8 *d = dst;
    const u8 *s = src;
    for (unsigned long i = 0; i < n; i++) d[i] = s[i];
    return dst;
}

void *memset(void *dst, int v, unsigned long n) {
    u8 *d = dst;
    for (unsigned long i = 0; i < n; i++) d[i] = (u8)v;
    return dst;
}

static u32 load_be32(const u8 *p) {
    return ((u32)p[0] << 24) | ((u32)p[1] << 16) | ((u32)p[2] << 8) | (u32)p[3];
}

static void store_be32(u8 *p, u32 v) {
    p[0] = (u8)(v >> 24);
    p[1] = (u8)(v >> 16);
    p[2] = (u8)(v >> 8);
    p[3] = (u8)v;
}

/* ---- SHA-1 (FIPS 180-4) ---- */

typedef struct {
    u32 h[5];
    u8 block[64];
    u32 used;  /* bytes in block */
    u64 total; /* bytes hashed */
} sha1_ctx;

static u32 rol(u32 x, u32 n) { return (x << n) | (x >> (32 - n)); }

static void sha1_compress(u32 h[5], const u8 block[64]) {
    u32 w[80];
    for (u32 i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
    for (u32 i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    u32 a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (u32 i = 0; i < 80; i++) {
        u32 f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        u32 t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1_init(sha1_ctx *c) {
    c->h[0] = 0x67452301;
    c->h[1] = 0xEFCDAB89;
    c->h[2] = 0x98BADCFE;
    c->h[3] = 0x10325476;
    c->h[4] = 0xC3D2E1F0;
    c->used = 0;
    c->total = 0;
}

static void sha1_update(sha1_ctx *c, const u8 *data, u32 len) {
    c->total += len;
    while (len > 0) {
        u32 take = 64 - c->used;
        if (take > len) take = len;
        memcpy(c->block + c->used, data, take);
        c->used += take;
        data += take;
        len -= take;
        if (c->used == 64) {
            sha1_compress(c->h, c->block);
            c->used = 0;
        }
    }
}

static void sha1_final(sha1_ctx *c, u8 out[20]) {
    u64 bits = c->total * 8;
    u8 pad = 0x80;
    sha1_update(c, &pad, 1);
    u8 zero = 0;
    while (c->used != 56) sha1_update(c, &zero, 1);
    u8 len_be[8];
    for (u32 i = 0; i < 8; i++) len_be[i] = (u8)(bits >> (56 - 8 * i));
    sha1_update(c, len_be, 8);
    for (u32 i = 0; i < 5; i++) store_be32(out + 4 * i, c->h[i]);
}

/* ---- HMAC-SHA-1 (RFC 2104), key at most one block (64 bytes) ---- */

static void hmac_sha1(const u8 *key, u32 key_len, const u8 *msg, u32 msg_len, u8 out[20]) {
    u8 pad[64];
    u8 inner[20];
    sha1_ctx c;

    memset(pad, 0x36, 64);
    for (u32 i = 0; i < key_len; i++) pad[i] ^= key[i];
    sha1_init(&c);
    sha1_update(&c, pad, 64);
    sha1_update(&c, msg, msg_len);
    sha1_final(&c, inner);

    memset(pad, 0x5C, 64);
    for (u32 i = 0; i < key_len; i++) pad[i] ^= key[i];
    sha1_init(&c);
    sha1_update(&c, pad, 64);
    sha1_update(&c, inner, 20);
    sha1_final(&c, out);
}

/* ---- HOTP (RFC 4226 section 5.3) ---- */

static u32 hotp(const u8 *secret, u32 secret_len, const u8 counter_be[8], u32 digits) {
    u8 mac[20];
    hmac_sha1(secret, secret_len, counter_be, 8, mac);
    u32 offset = mac[19] & 0x0F;
    u32 binary = load_be32(mac + offset) & 0x7FFFFFFF;
    u32 modulus = 1;
    for (u32 i = 0; i < digits; i++) modulus *= 10;
    return binary % modulus;
}

/* ---- the applet ---- */

typedef struct {
    u8 counter[8];
    u8 digits;
    u8 secret_len;
    u8 secret[MAX_SECRET];
} record;

/* The whole persistent record, read from storage at each command. */
static int load(record *r) {
    if (se_storage_size() < STORAGE_NEEDED) return 0;
    u8 raw[STORAGE_NEEDED];
    se_storage_read(0, raw, STORAGE_NEEDED);
    memcpy(r->counter, raw + OFF_COUNTER, 8);
    r->digits = raw[OFF_DIGITS];
    r->secret_len = raw[OFF_SECRET_LEN];
    memcpy(r->secret, raw + OFF_SECRET, MAX_SECRET);
    return r->digits >= 6 && r->digits <= 8 && r->secret_len >= 1 && r->secret_len <= MAX_SECRET;
}

static void increment(u8 counter[8]) {
    for (int i = 7; i >= 0; i--) {
        if (++counter[i] != 0) break;
    }
}

int install(void) {
    u8 params[1 + MAX_SECRET + 1];
    int len = se_params(params, sizeof params);
    if (len < 2 || len > 1 + MAX_SECRET) return SW_WRONG_DATA;
    u8 digits = params[0];
    if (digits < 6 || digits > 8) return SW_WRONG_DATA;
    if (se_storage_size() < STORAGE_NEEDED) return SW_NO_SPACE;

    u8 raw[STORAGE_NEEDED];
    memset(raw, 0, STORAGE_NEEDED); /* counter = 0, secret zero-padded */
    raw[OFF_DIGITS] = digits;
    raw[OFF_SECRET_LEN] = (u8)(len - 1);
    memcpy(raw + OFF_SECRET, params + 1, (u32)(len - 1));
    se_storage_write(0, raw, STORAGE_NEEDED);
    return SW_OK;
}

int process(void) {
    u8 cmd[4 + 8];
    int len = se_command(cmd, sizeof cmd);
    if (len < 4) return SW_WRONG_LENGTH;
    int nc = len - 4;
    u8 ins = cmd[1];
    if (ins != 0x01 && ins != 0x02 && ins != 0x03) return SW_INS;
    if (cmd[2] != 0 || cmd[3] != 0) return SW_WRONG_P1P2;
    if (nc != (ins == 0x03 ? 8 : 0)) return SW_WRONG_LENGTH;
    if (se_pin_verified(PIN_REFERENCE) != 1) return SW_SECURITY;

    record r;
    if (!load(&r)) return SW_CONDITIONS; /* not installed properly */

    switch (ins) {
    case 0x01: { /* GENERATE */
        u32 otp = hotp(r.secret, r.secret_len, r.counter, r.digits);
        increment(r.counter);
        se_storage_write(OFF_COUNTER, r.counter, 8);
        u8 out[8];
        for (int i = r.digits - 1; i >= 0; i--) {
            out[i] = (u8)('0' + otp % 10);
            otp /= 10;
        }
        se_respond(out, r.digits);
        return SW_OK;
    }
    case 0x02: /* GET COUNTER */
        se_respond(r.counter, 8);
        return SW_OK;
    default: /* 0x03 SET COUNTER */
        se_storage_write(OFF_COUNTER, cmd + 4, 8);
        return SW_OK;
    }
}
