;; Hostile: storage ranges outside the instance's storage, which trap (6F00).
;;   P1 = 0 (default): se.storage_read(storage_size(), buf, 16), just past the end
;;   P1 = 1: se.storage_write(-1, buf, 16), an offset that is negative as i32 (huge as u32)
;;   P1 = 2: se.storage_write(0x7FFFFFF8, buf, 16), offset + len overflows i32
;; Any case that returns instead answers 9000, so a test sees the host did not trap.
(module
  (import "se" "command" (func $command (param i32 i32) (result i32)))
  (import "se" "storage_size" (func $storage_size (result i32)))
  (import "se" "storage_read" (func $storage_read (param i32 i32 i32) (result i32)))
  (import "se" "storage_write" (func $storage_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (local $p1 i32)
    (drop (call $command (i32.const 0) (i32.const 4)))
    (local.set $p1 (i32.load8_u (i32.const 2)))
    (if (i32.eq (local.get $p1) (i32.const 1))
      (then
        (drop (call $storage_write (i32.const -1) (i32.const 16) (i32.const 16)))
        (return (i32.const 0x9000))))
    (if (i32.eq (local.get $p1) (i32.const 2))
      (then
        (drop (call $storage_write (i32.const 0x7FFFFFF8) (i32.const 16) (i32.const 16)))
        (return (i32.const 0x9000))))
    (drop (call $storage_read (call $storage_size) (i32.const 16) (i32.const 16)))
    (i32.const 0x9000))
)
