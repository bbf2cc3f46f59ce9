;; echo: the example applet of the WebAssembly applet interface, version 1
;; (apdu-specs/docs/applets.md). Compile with the `wat` crate (or wat2wasm); see README.md.
;;
;; process, by INS (CLA and the routing are the card's):
;;   10  echo the command data (9000): the benchmark's trivial applet APDU
;;   20  increment the 4-byte big-endian counter at storage offset 0, answer the new value
;;   22  answer the counter, unchanged
;;   30  read the transparent file whose FID is P1P2 (se.file_read from offset 0, up to Le
;;       bytes, 256 without Le) and answer its bytes; a negative host result is the SW
;;   40  the instance's P-256 public key (65 bytes, SEC1 uncompressed)
;;   42  ECDSA P-256 signature over the command data (64 bytes r || s)
;;   50  write the command data at storage offset 4, then se.throw(6A80): the write is rolled back
;;   any other INS: 6D00
;;
;; Memory (2 pages, volatile): 0..1024 scratch for host outputs (counter, key, signature),
;; 1024.. the command as se.command copies it (CLA INS P1 P2 data), room for 65 535 data bytes.
(module
  (import "se" "command" (func $command (param i32 i32) (result i32)))
  (import "se" "le" (func $le (result i32)))
  (import "se" "respond" (func $respond (param i32 i32) (result i32)))
  (import "se" "throw" (func $throw (param i32)))
  (import "se" "storage_read" (func $storage_read (param i32 i32 i32) (result i32)))
  (import "se" "storage_write" (func $storage_write (param i32 i32 i32) (result i32)))
  (import "se" "file_read" (func $file_read (param i32 i32 i32 i32) (result i32)))
  (import "se" "ec_public_key" (func $ec_public_key (param i32) (result i32)))
  (import "se" "ecdsa_sign" (func $ecdsa_sign (param i32 i32 i32) (result i32)))

  (memory (export "memory") 2)

  ;; Where se.command puts the command; the data starts 4 bytes later.
  (global $cmd i32 (i32.const 1024))
  (global $data i32 (i32.const 1028))
  (global $cmd_cap i32 (i32.const 65539))

  (func (export "install") (result i32)
    (i32.const 0x9000))

  (func (export "select") (result i32)
    (i32.const 0x9000))

  ;; The 4-byte big-endian counter at scratch 0: load and store.
  (func $get_be32 (result i32)
    (i32.or
      (i32.or
        (i32.shl (i32.load8_u (i32.const 0)) (i32.const 24))
        (i32.shl (i32.load8_u (i32.const 1)) (i32.const 16)))
      (i32.or
        (i32.shl (i32.load8_u (i32.const 2)) (i32.const 8))
        (i32.load8_u (i32.const 3)))))

  (func $put_be32 (param $v i32)
    (i32.store8 (i32.const 0) (i32.shr_u (local.get $v) (i32.const 24)))
    (i32.store8 (i32.const 1) (i32.shr_u (local.get $v) (i32.const 16)))
    (i32.store8 (i32.const 2) (i32.shr_u (local.get $v) (i32.const 8)))
    (i32.store8 (i32.const 3) (local.get $v)))

  ;; A host result: negative is minus a status word (answered as is), else 0.
  (func $host_sw (param $r i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $r) (i32.const 0))
      (then (i32.sub (i32.const 0) (local.get $r)))
      (else (i32.const 0))))

  (func (export "process") (result i32)
    (local $len i32) (local $ins i32) (local $n i32)
    ;; len - 4 = Nc after this.
    (local.set $len
      (i32.sub (call $command (global.get $cmd) (global.get $cmd_cap)) (i32.const 4)))
    (local.set $ins (i32.load8_u offset=1 (global.get $cmd)))

    ;; 10: echo (first, and nothing else on its path).
    (if (i32.eq (local.get $ins) (i32.const 0x10))
      (then
        (drop (call $respond (global.get $data) (local.get $len)))
        (return (i32.const 0x9000))))

    ;; 20: counter + 1, stored, answered.
    (if (i32.eq (local.get $ins) (i32.const 0x20))
      (then
        (drop (call $storage_read (i32.const 0) (i32.const 0) (i32.const 4)))
        (call $put_be32 (i32.add (call $get_be32) (i32.const 1)))
        (drop (call $storage_write (i32.const 0) (i32.const 0) (i32.const 4)))
        (drop (call $respond (i32.const 0) (i32.const 4)))
        (return (i32.const 0x9000))))

    ;; 22: the counter.
    (if (i32.eq (local.get $ins) (i32.const 0x22))
      (then
        (drop (call $storage_read (i32.const 0) (i32.const 0) (i32.const 4)))
        (drop (call $respond (i32.const 0) (i32.const 4)))
        (return (i32.const 0x9000))))

    ;; 30: file P1P2, up to Le bytes (256 without Le), read over the command buffer.
    (if (i32.eq (local.get $ins) (i32.const 0x30))
      (then
        (local.set $n (call $le))
        (if (i32.eqz (local.get $n)) (then (local.set $n (i32.const 256))))
        (local.set $n
          (call $file_read
            (i32.or
              (i32.shl (i32.load8_u offset=2 (global.get $cmd)) (i32.const 8))
              (i32.load8_u offset=3 (global.get $cmd)))
            (i32.const 0)
            (global.get $cmd)
            (local.get $n)))
        (if (i32.lt_s (local.get $n) (i32.const 0))
          (then (return (call $host_sw (local.get $n)))))
        (drop (call $respond (global.get $cmd) (local.get $n)))
        (return (i32.const 0x9000))))

    ;; 40: public key.
    (if (i32.eq (local.get $ins) (i32.const 0x40))
      (then
        (local.set $n (call $ec_public_key (i32.const 0)))
        (if (i32.lt_s (local.get $n) (i32.const 0))
          (then (return (call $host_sw (local.get $n)))))
        (drop (call $respond (i32.const 0) (i32.const 65)))
        (return (i32.const 0x9000))))

    ;; 42: signature over the command data.
    (if (i32.eq (local.get $ins) (i32.const 0x42))
      (then
        (local.set $n (call $ecdsa_sign (global.get $data) (local.get $len) (i32.const 0)))
        (if (i32.lt_s (local.get $n) (i32.const 0))
          (then (return (call $host_sw (local.get $n)))))
        (drop (call $respond (i32.const 0) (i32.const 64)))
        (return (i32.const 0x9000))))

    ;; 50: write, then throw: the card must roll the write back.
    (if (i32.eq (local.get $ins) (i32.const 0x50))
      (then
        (drop (call $storage_write (i32.const 4) (global.get $data) (local.get $len)))
        (call $throw (i32.const 0x6A80))
        (unreachable)))

    (i32.const 0x6D00))
)
