;; Hostile: exports its memory but no `process`: LOAD must refuse it (6A80).
(module
  (memory (export "memory") 1)
  (func (export "install") (result i32)
    (i32.const 0x9000))
)
