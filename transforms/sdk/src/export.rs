//! [`export_transform!`]: a [`Transform`] type as the component's
//! `processor` export.
//!
//! The macro declares, in the caller's crate, the slot that holds the
//! instance (a `thread_local`: a guest is single-threaded, and a `static`
//! cannot be generic) and the generated `Guest` impl, which hands each call to
//! the functions below. The bindings' own `export!` then writes the exported
//! symbols; its `unsafe` is expanded from this crate's macros, so the
//! caller's crate can keep `forbid(unsafe_code)`.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::bindings::tributary::transform::types as wit;
use crate::{Batch, Config, Output, Transform};

/// Where [`export_transform!`] keeps the instance: none until `init`.
pub type Slot<T> = LocalKey<RefCell<Option<T>>>;

/// `init`: a new instance from the config; it replaces the previous one
/// only when it succeeds.
pub fn init<T: Transform>(
    slot: &'static Slot<T>,
    config: Vec<(String, String)>,
) -> Result<Option<Vec<String>>, String> {
    let instance = T::init(Config::new(config))?;
    let fields = instance.fields();
    slot.with_borrow_mut(|s| *s = Some(instance));
    Ok(fields)
}

fn with_instance<T: Transform>(
    slot: &'static Slot<T>,
    call: &str,
    len: usize,
    f: impl FnOnce(&mut T, &mut Output) -> Result<(), String>,
) -> Result<wit::Output, String> {
    slot.with_borrow_mut(|s| {
        let instance = s
            .as_mut()
            .ok_or_else(|| format!("{}: {call} called before init", T::NAME))?;
        let mut out = Output::new();
        f(instance, &mut out)?;
        Ok(out.into_wit(len))
    })
}

pub fn process<T: Transform>(
    slot: &'static Slot<T>,
    batch: wit::Batch,
) -> Result<wit::Output, String> {
    let batch = Batch::from_wit(batch);
    with_instance(slot, "process", batch.len(), |t, out| {
        t.process(&batch, out)
    })
}

pub fn on_watermark<T: Transform>(
    slot: &'static Slot<T>,
    watermark: i64,
) -> Result<wit::Output, String> {
    with_instance(slot, "on-watermark", 0, |t, out| {
        t.on_watermark(watermark, out)
    })
}

/// Exports a [`Transform`] type as the component's `processor`: once per
/// component, at the crate's top level.
///
/// ```ignore
/// tributary_transform_sdk::export_transform!(Upper);
/// ```
///
/// `init` builds the instance (a second `init` replaces it); `process` and
/// `on-watermark` before a successful `init` fail with an error. Only a
/// `wasm32` build exports anything: natively the crate still builds and
/// tests, with the transform type checked.
#[macro_export]
macro_rules! export_transform {
    ($transform:ty) => {
        const _: () = {
            ::std::thread_local! {
                static INSTANCE: ::std::cell::RefCell<::std::option::Option<$transform>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct Exports;

            impl $crate::__private::Guest for Exports {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<
                    ::std::option::Option<::std::vec::Vec<::std::string::String>>,
                    ::std::string::String,
                > {
                    $crate::__private::init::<$transform>(&INSTANCE, config)
                }

                fn process(
                    batch: $crate::__private::WitBatch,
                ) -> ::std::result::Result<$crate::__private::WitOutput, ::std::string::String>
                {
                    $crate::__private::process::<$transform>(&INSTANCE, batch)
                }

                fn on_watermark(
                    watermark: i64,
                ) -> ::std::result::Result<$crate::__private::WitOutput, ::std::string::String>
                {
                    $crate::__private::on_watermark::<$transform>(&INSTANCE, watermark)
                }
            }

            // Only in a component: natively, component export names are not
            // symbols a shared library can have.
            #[cfg(target_arch = "wasm32")]
            $crate::bindings::export! { Exports with_types_in $crate::bindings }

            // Natively the calls are used here instead, so that the
            // transform's code does not read as dead.
            #[cfg(not(target_arch = "wasm32"))]
            const _: () = {
                let _ = <Exports as $crate::__private::Guest>::init;
                let _ = <Exports as $crate::__private::Guest>::process;
                let _ = <Exports as $crate::__private::Guest>::on_watermark;
            };
        };
    };
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::{Field, FieldType};

    /// Keeps every row, or rejects every row with its `tag` when one is set.
    struct Tagger {
        tag: Option<String>,
    }

    impl Transform for Tagger {
        const NAME: &'static str = "tagger";

        fn init(config: Config) -> Result<Self, String> {
            config.only(&["tag"])?;
            Ok(Tagger {
                tag: config.get("tag").map(str::to_string),
            })
        }

        fn fields(&self) -> Option<Vec<String>> {
            Some(vec!["x".into()])
        }

        fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
            for row in batch.rows() {
                match &self.tag {
                    Some(tag) => out.reject(row.index(), tag.clone()),
                    None => out.keep(row.index()),
                }
            }
            Ok(())
        }
    }

    thread_local! {
        static SLOT: RefCell<Option<Tagger>> = const { RefCell::new(None) };
    }

    fn one_row() -> wit::Batch {
        wit::Batch {
            fields: vec![Field {
                name: "x".into(),
                type_: FieldType::Int,
                nullable: false,
            }],
            len: 1,
            columns: vec![wit::Column {
                values: wit::Values::Int(vec![1]),
                validity: None,
            }],
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn calls_before_init_fail_and_a_second_init_replaces_the_instance() {
        assert_eq!(
            process(&SLOT, one_row()).unwrap_err(),
            "tagger: process called before init"
        );
        assert_eq!(
            on_watermark(&SLOT, 5).unwrap_err(),
            "tagger: on-watermark called before init"
        );

        assert_eq!(init(&SLOT, pairs(&[])), Ok(Some(vec!["x".into()])));
        assert_eq!(process(&SLOT, one_row()).unwrap().rows, None, "all kept");
        assert_eq!(on_watermark(&SLOT, 5).unwrap().rows, None);

        assert!(init(&SLOT, pairs(&[("tag", "bad")])).is_ok());
        let out = process(&SLOT, one_row()).unwrap();
        assert_eq!(out.rejected[0].reason, "bad", "the new instance answers");

        // A failed init leaves the working instance in place.
        assert!(
            init(&SLOT, pairs(&[("tga", "x")]))
                .unwrap_err()
                .contains("`tga`")
        );
        assert_eq!(process(&SLOT, one_row()).unwrap().rejected[0].reason, "bad");
    }
}
