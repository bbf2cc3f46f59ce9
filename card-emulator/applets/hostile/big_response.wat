;; Hostile: se.respond with 70 000 bytes, more than the 65 536 an answer may carry: the
;; host call traps (6F00). The range itself is inside the memory (2 pages).
(module
  (import "se" "respond" (func $respond (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "process") (result i32)
    (drop (call $respond (i32.const 0) (i32.const 70000)))
    (i32.const 0x9000))
)
