;; Hostile: process never returns. The card must stop it by fuel (6F00) and stay responsive.
(module
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (loop $forever
      (br $forever))
    (i32.const 0x9000))
)
