;; Hostile: imports a function module "se" does not offer (a clock, which version 1 has
;; not): LOAD must refuse it (6A80), and so must any instantiation.
(module
  (import "se" "clock" (func $clock (result i64)))
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (drop (call $clock))
    (i32.const 0x9000))
)
