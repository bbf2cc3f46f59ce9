;; Hostile: process grows the memory a page at a time without end, ignoring failures
;; (memory.grow answers -1 past the card's memory limit), and stores at the top of the page
;; it just asked for each time. While growing succeeds the store is in bounds; once it
;; fails, the store lands one page past the end and traps (6F00). The memory never exceeds
;; the card's limit (memory_bytes, 1 MiB by default).
(module
  (memory (export "memory") 1)
  (func (export "process") (result i32)
    (local $pages i32)
    (loop $again
      (local.set $pages (memory.size))
      (drop (memory.grow (i32.const 1)))
      ;; the last word of page number $pages (the new one, if the grow succeeded)
      (i32.store
        (i32.add (i32.mul (local.get $pages) (i32.const 65536)) (i32.const 65532))
        (i32.const 0xDEAD))
      (br $again))
    (i32.const 0x9000))
)
