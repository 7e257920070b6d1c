;; A transform whose core module has two linear memories and grows both to
;; 3 MiB on every batch (only up to that size, so a cap of 4 MiB per memory
;; would never stop it). The sandbox caps the sum of a component's memories:
;; with `limits.memory_mb: 4` the second grow is refused and the guest traps.
;;
;; The canonical ABI by hand: `init` returns ok(none), `process` and
;; `on-watermark` ok with an empty output, each through a return area at
;; address 0; `cabi_realloc` is a bump allocator that starts again at the
;; bottom once the first memory is full (a call's arguments are dead after it).
(module
  (memory (export "memory") 2)
  (memory $second 1)
  (global $heap (mut i32) (i32.const 1024))

  (func (export "cabi_realloc")
        (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
        (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $size))
                  (i32.mul (memory.size 0) (i32.const 65536)))
      (then (local.set $p (i32.const 1024))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (local.get $p))

  ;; Grows memory 0 and then memory $second to `pages` pages; traps when refused.
  (func $grow_both (param $pages i32)
    (if (i32.lt_u (memory.size 0) (local.get $pages))
      (then
        (if (i32.eq (memory.grow 0 (i32.sub (local.get $pages) (memory.size 0)))
                    (i32.const -1))
          (then unreachable))))
    (if (i32.lt_u (memory.size $second) (local.get $pages))
      (then
        (if (i32.eq (memory.grow $second (i32.sub (local.get $pages) (memory.size $second)))
                    (i32.const -1))
          (then unreachable)))))

  ;; ok(output { emit: [], dropped: [], rejected: [] })
  (func $ok_empty (result i32)
    (i32.store8 (i32.const 0) (i32.const 0))
    (i64.store (i32.const 4) (i64.const 0))
    (i64.store (i32.const 12) (i64.const 0))
    (i64.store (i32.const 20) (i64.const 0))
    (i32.const 0))

  (func (export "tributary:transform/processor@0.1.0#init")
        (param i32 i32) (result i32)
    ;; ok(none): all fields read
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.store8 (i32.const 4) (i32.const 0))
    (i32.const 0))

  (func (export "tributary:transform/processor@0.1.0#process")
        (param i32 i32 i32 i32) (result i32)
    (call $grow_both (i32.const 48))
    (call $ok_empty))

  (func (export "tributary:transform/processor@0.1.0#on-watermark")
        (param i64) (result i32)
    (call $ok_empty)))
