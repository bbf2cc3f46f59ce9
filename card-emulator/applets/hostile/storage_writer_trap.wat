;; Hostile: writes 8 bytes of AA at storage offset 0, then traps (unreachable): the card
;; must answer 6F00 and roll the write back (the storage keeps its old bytes).
(module
  (import "se" "storage_write" (func $storage_write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\aa\aa\aa\aa\aa\aa\aa\aa")
  (func (export "process") (result i32)
    (drop (call $storage_write (i32.const 0) (i32.const 0) (i32.const 8)))
    (unreachable))
)
