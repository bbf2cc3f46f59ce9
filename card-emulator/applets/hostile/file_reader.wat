;; Reads a file of its container: process answers se.file_read(P1P2, 0, buf, Le or 16),
;; the bytes read, or minus the negative result as the status word (6A82 for a container
;; that is disabled or has no such file, 6982 for a PIN not verified). Used to show a
;; disabled container's files are out of reach.
(module
  (import "se" "command" (func $command (param i32 i32) (result i32)))
  (import "se" "le" (func $le (result i32)))
  (import "se" "respond" (func $respond (param i32 i32) (result i32)))
  (import "se" "file_read" (func $file_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "process") (result i32)
    (local $n i32)
    (drop (call $command (i32.const 0) (i32.const 4)))
    (local.set $n (call $le))
    (if (i32.eqz (local.get $n)) (then (local.set $n (i32.const 16))))
    (local.set $n
      (call $file_read
        (i32.or
          (i32.shl (i32.load8_u (i32.const 2)) (i32.const 8))
          (i32.load8_u (i32.const 3)))
        (i32.const 0)
        (i32.const 16)
        (local.get $n)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (return (i32.sub (i32.const 0) (local.get $n)))))
    (drop (call $respond (i32.const 16) (local.get $n)))
    (i32.const 0x9000))
)
