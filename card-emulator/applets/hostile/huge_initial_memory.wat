;; Hostile: an initial memory of 2048 pages (128 MiB), beyond the default 1 MiB limit:
;; INSTALL (or instantiation) must refuse it (6A84) without allocating 128 MiB.
(module
  (memory (export "memory") 2048)
  (func (export "process") (result i32)
    (i32.const 0x9000))
)
