;; Hostile: process calls a function that calls itself without end. The card's call depth
;; limit (max_recursion) makes it trap (6F00) instead of exhausting the host stack.
(module
  (memory (export "memory") 1)
  (func $down (param $n i32) (result i32)
    (call $down (i32.add (local.get $n) (i32.const 1))))
  (func (export "process") (result i32)
    (call $down (i32.const 0)))
)
