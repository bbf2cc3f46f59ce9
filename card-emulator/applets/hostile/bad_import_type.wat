;; Hostile: imports se.random with the wrong type, (i32) -> i32 instead of
;; (i32, i32) -> i32: LOAD must refuse it (6A80).
(module
  (import "se" "random" (func $random (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (drop (call $random (i32.const 0)))
    (i32.const 0x9000))
)
