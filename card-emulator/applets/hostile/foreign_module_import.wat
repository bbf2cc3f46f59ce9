;; Hostile: imports from a module other than "se" (a WASI-like `env.open`): LOAD must
;; refuse it (6A80).
(module
  (import "env" "open" (func $open (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (call $open (i32.const 0) (i32.const 0)))
)
